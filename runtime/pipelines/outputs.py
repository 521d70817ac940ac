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


@dataclass
class SemanticStableDiffusionPipelineOutput(StableDiffusionPipelineOutput):
    """``SemanticStableDiffusionPipeline``'s output: ``images`` (no safety checker runs: ``nsfw_content_detected``
    None)."""


@dataclass
class StableDiffusionSafePipelineOutput:
    """``StableDiffusionPipelineSafe``'s output: ``applied_safety_concept`` is the concept text when safe latent
    guidance ran, else None; no safety checker runs (``nsfw_content_detected``, ``unsafe_images``: None)."""

    images: Any
    nsfw_content_detected: list[bool] | None = None
    unsafe_images: Any = None
    applied_safety_concept: str | None = None

    def __getitem__(self, index: int) -> Any:
        fields = (self.images, self.nsfw_content_detected, self.applied_safety_concept, self.unsafe_images)
        return fields[index]


@dataclass
class DiffEditInversionPipelineOutput:
    """``StableDiffusionDiffEditPipeline.invert``'s output: ``latents`` [batch, steps, C, h, w], the inverted
    trajectory from the least to the most noised; ``images`` decoded from them with ``decode_latents``, else None."""

    latents: Any
    images: Any = None

    def __getitem__(self, index: int) -> Any:
        return (self.latents, self.images)[index]
