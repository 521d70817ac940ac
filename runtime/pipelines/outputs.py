"""What the pipelines return, with diffusers' names (indexable like diffusers' outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StableDiffusionPipelineOutput:
    """``images``: list of PIL images or an NHWC float array; no safety checker runs (always None)."""

    images: Any
    nsfw_content_detected: list[bool] | None = None

    def __getitem__(self, index: int) -> Any:
        return (self.images, self.nsfw_content_detected)[index]


@dataclass
class ImagePipelineOutput:
    images: Any

    def __getitem__(self, index: int) -> Any:
        return (self.images,)[index]


@dataclass
class StableDiffusionXLPipelineOutput:
    images: Any

    def __getitem__(self, index: int) -> Any:
        return (self.images,)[index]
