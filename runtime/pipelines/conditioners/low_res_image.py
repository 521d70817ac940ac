"""``LowResImage``: the x4 upscaler's low-resolution picture beside the latents at every step, as diffusers'
``StableDiffusionUpscalePipeline``: noised once to ``noise_level`` by the low-resolution DDPM scheduler (its noise
drawn before the latents'), repeated for guidance and ``num_images_per_prompt``, and the noise level handed to the
UNet as its ``class_labels``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.errors import InputError

from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class LowResImage(Conditioner):
    """``pixels``: NCHW in [-1, 1]; ``noise_level``: checked against the pipeline's ``max_noise_level``;
    ``low_res_scheduler``: a DDPM scheduler (its ``add_noise``); ``latents``: the caller's, or None."""

    def __init__(self, pixels: Any, noise_level: int, low_res_scheduler: Any, latents: Any = None) -> None:
        self.pixels, self.noise_level = pixels, noise_level
        self.low_res_scheduler, self.latents = low_res_scheduler, latents

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        xp, batch = pipe.xp, call.embeds.batch
        prompts = batch // call.num_images_per_prompt
        if self.pixels.shape[0] != prompts:
            raise InputError(
                f"`prompt` has batch size {prompts} and `image` has batch size {self.pixels.shape[0]}; pass one "
                "image per prompt"
            )
        pixels = pipe.to_xp(self.pixels)
        noise = call.noise.randn(pixels.shape)
        level = xp.asarray(np.array([self.noise_level], dtype=np.int64))
        image = self.low_res_scheduler.add_noise(pixels, noise, level)
        copies = (2 if call.guidance.enabled else 1) * call.num_images_per_prompt
        call.state["image"] = xp.concatenate([image] * copies)
        call.state["noise_level"] = xp.full((call.state["image"].shape[0],), self.noise_level, dtype=xp.int64)
        call.extra_channels += ("image",)
        call.unet_inputs["class_labels"] = "noise_level"
        height, width = (n * pipe.vae_scale_factor for n in pixels.shape[2:])
        channels = int(pipe.vae.config.latent_channels)
        call.latents = pipe.prepare_latents(batch, channels, height, width, call.noise, self.latents)
