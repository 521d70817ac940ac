"""``ImageLatents``: start from an image (img2img): its latents noised to the first timestep ``strength``
keeps (not noised: a refiner's ``denoising_start`` picks up a base's latents as they are), or the caller's
``latents`` as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..image_latents import noised_image_latents
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class ImageLatents(Conditioner):
    """The starting latents from ``pixels`` (N x 3 x H x W in [-1, 1], or latents): diffusers' img2img."""

    def __init__(self, pixels: Any, latents: Any = None, *, add_noise: bool = True) -> None:
        self.pixels, self.latents, self.add_noise = pixels, latents, add_noise

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        if self.latents is not None:
            call.latents = pipe.to_xp(self.latents)
            return
        image = pipe.to_xp(self.pixels)
        call.latents = noised_image_latents(
            pipe.vae, pipe.scheduler, image, call.timesteps, call.embeds.batch, call.noise, self.add_noise
        )
