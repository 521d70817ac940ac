"""``StableDiffusionLDM3DPipeline``: text to an RGB picture and its depth map from LDM3D bundles (a VAE decoding
RGB + depth channels), as diffusers runs it and as its ``VaeImageProcessorLDM3D`` splits the output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import numpy_to_pil
from sdrt.runtime.random.noise import GeneratorLike

from . import decoding
from .call_state import pipeline_call
from .stable_diffusion import StableDiffusionBase


@dataclass
class LDM3DPipelineOutput:
    """``rgb``: the pictures; ``depth``: their depth maps (16-bit PIL images, or NHWC arrays with one channel)."""

    rgb: Any
    depth: Any
    nsfw_content_detected: list[bool] | None = None

    def __getitem__(self, index: int) -> Any:
        return (self.rgb, self.depth, self.nsfw_content_detected)[index]


def rgblike_to_depthmap(image: np.ndarray) -> np.ndarray:
    """The older checkpoints' depth as RGB-like channels: high byte * 256 + low byte."""
    whole = image.astype(np.int32)
    return (whole[:, :, 1] * 256 + whole[:, :, 2]).astype(image.dtype)


def split_rgb_depth(images: np.ndarray, output_type: str) -> tuple[Any, Any]:
    """NHWC [0, 1] images with 4 (or 6) channels -> (rgb, depth) as ``VaeImageProcessorLDM3D.postprocess``."""
    channels = images.shape[-1]
    if channels not in (4, 6):
        raise InputError(f"an LDM3D VAE decodes 4 or 6 channels (RGB + depth), this one {channels}")
    if output_type == "np":
        if channels == 6:
            return images[..., :3], np.stack([rgblike_to_depthmap(image[:, :, 3:]) for image in images])
        return images[..., :3], images[..., 3:]
    rgb = numpy_to_pil(images[..., :3])
    if channels == 6:
        bytes_ = (images[..., 3:] * 255).round().astype("uint8")
        depth = [Image.fromarray(rgblike_to_depthmap(d).astype(np.uint16)) for d in bytes_]
    else:
        depth = [Image.fromarray((d[:, :, 0] * 65535.0).astype(np.uint16)) for d in images[..., 3:]]
    return rgb, depth


class StableDiffusionLDM3DPipeline(StableDiffusionBase):
    """``out = pipe(prompt)``; ``out.rgb[0]`` the picture, ``out.depth[0]`` its 16-bit depth map."""

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 49,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        guidance_scale: float = 5.0,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guidance_rescale: float = 0.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> LDM3DPipelineOutput | tuple:
        """diffusers' arguments and defaults; ``output_type`` "pil" or "np" (as diffusers' LDM3D processor)."""
        if output_type not in ("pil", "np"):
            raise InputError(
                f"StableDiffusionLDM3DPipeline's output_type is 'pil' or 'np', got {output_type!r}"
            )
        default_height, default_width = self.default_size()
        return self.generate(self.open_call((height or default_height, width or default_width)))

    def decode_latents(self, latents: Any, output_type: str = "pil") -> Any:
        """(rgb, depth) of the decoded latents."""
        return split_rgb_depth(decoding.decode_latents(self, latents, "np"), output_type)

    def output(self, images: Any, return_dict: bool) -> Any:
        rgb, depth = images
        return LDM3DPipelineOutput(rgb, depth) if return_dict else ((rgb, depth), None)
