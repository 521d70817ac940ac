"""``InpaintMask``: repaint the white part of a mask, as diffusers' inpainting pipelines do, for both UNet kinds:

- an inpainting UNet (9 input channels): every step sees [latents, mask, masked-image latents];
- a plain 4-channel UNet: after every step the unmasked part is replaced by the image's latents noised to
  the next timestep (``RepaintOutsideMask``).

The starting latents are drawn here too, in diffusers' order (the image's encoding, then the noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import nearest_resize

from ..arrays import repeat_to_batch
from ..image_latents import encode_image
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class InpaintMask(Conditioner):
    """``image`` (N x 3 x H x W in [-1, 1]) and ``mask`` (N x 1 x H x W, 1 = repaint) at the call's size;
    ``masked_image_latents`` replaces the masked image; ``latents`` are the caller's starting noise;
    ``add_noise=False`` (SDXL's ``denoising_start``): start from the image's latents as they are."""

    def __init__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        strength: float,
        masked_image_latents: Any = None,
        latents: Any = None,
        add_noise: bool = True,
    ) -> None:
        self.image, self.mask, self.strength, self.add_noise = image, mask, strength, add_noise
        self.masked = image * (mask < 0.5) if masked_image_latents is None else masked_image_latents
        self.latents = latents
        self.repaint: RepaintOutsideMask | None = None

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        plain_unet = pipe.unet.config.in_channels == 4
        latents, initial_noise, image_latents = self.starting_latents(pipe, call, plain_unet)
        call.latents = latents
        mask, masked = self.mask_latents(pipe, call)
        call.state |= {"mask": mask, "masked_image_latents": masked}
        if plain_unet:
            self.repaint = RepaintOutsideMask(
                pipe.scheduler, image_latents, initial_noise, call.timesteps, call.guidance.enabled
            )
        else:
            call.extra_channels += ("mask", "masked_image_latents")

    def cut_to(self, timesteps: Any) -> None:
        """The call's timesteps cut after ``prepare`` (SDXL ControlNet inpainting's ``denoising_end``): a plain
        UNet's last step keeps the image's latents un-noised, as diffusers' loop over the cut list does."""
        if self.repaint is not None:
            self.repaint.timesteps = timesteps

    def after_step(self, i: int, t: Any, state: dict[str, Any]) -> None:
        if self.repaint is not None:
            self.repaint(i, t, state)

    def starting_latents(
        self, pipe: TextGuidedPipeline, call: GuidedCall, plain_unet: bool
    ) -> tuple[Any, Any, Any]:
        """(latents, the noise drawn for them, the image's latents when needed), drawn in diffusers' order."""
        batch, noise, scale = call.embeds.batch, call.noise, pipe.vae_scale_factor
        height, width = self.image.shape[2:]
        shape = (batch, pipe.vae.config.latent_channels, height // scale, width // scale)
        is_strength_max = self.strength == 1.0
        image_latents = None
        if plain_unet or not self.add_noise or (self.latents is None and not is_strength_max):
            encoded = encode_image(pipe.vae, pipe.to_xp(self.image), noise)
            image_latents = repeat_to_batch(pipe.xp, encoded, batch, "image")
        if not self.add_noise:  # diffusers draws the noise all the same (for the plain UNet's repaint)
            return image_latents, noise.randn(shape), image_latents
        if self.latents is not None:
            drawn = pipe.to_xp(self.latents)
            if tuple(drawn.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(drawn.shape)}, expected {shape}")
            return drawn * pipe.scheduler.init_noise_sigma, drawn, image_latents
        drawn = noise.randn(shape)
        if is_strength_max:
            return drawn * pipe.scheduler.init_noise_sigma, drawn, image_latents
        timestep = np.repeat(np.asarray(call.timesteps[:1]), batch)
        return pipe.scheduler.add_noise(image_latents, drawn, timestep), drawn, image_latents

    def mask_latents(self, pipe: TextGuidedPipeline, call: GuidedCall) -> tuple[Any, Any]:
        """Mask at latent size and the masked image's latents, repeated to the batch (doubled for guidance)."""
        xp, scale, batch = pipe.xp, pipe.vae_scale_factor, call.embeds.batch
        height, width = self.image.shape[2:]
        mask = nearest_resize(self.mask, height // scale, width // scale)
        mask = repeat_to_batch(xp, pipe.to_xp(mask), batch, "mask")
        masked = encode_image(pipe.vae, pipe.to_xp(self.masked), call.noise)
        masked = repeat_to_batch(xp, masked, batch, "masked image")
        if call.guidance.enabled:
            return xp.concatenate([mask] * 2), xp.concatenate([masked] * 2)
        return mask, masked


class RepaintOutsideMask:
    """After each step of a plain UNet: outside the mask, the image's latents noised to the next timestep."""

    def __init__(self, scheduler: Any, image_latents: Any, noise: Any, timesteps: Any, guided: bool) -> None:
        self.scheduler = scheduler
        self.image_latents = image_latents
        self.noise = noise
        self.timesteps = timesteps
        self.guided = guided

    def __call__(self, i: int, t: Any, state: dict[str, Any]) -> None:
        mask = state["mask"]
        keep = mask[: mask.shape[0] // 2] if self.guided else mask
        proper = self.image_latents
        if i < len(self.timesteps) - 1:
            proper = self.scheduler.add_noise(proper, self.noise, np.asarray([self.timesteps[i + 1]]))
        state["latents"] = (1 - keep) * proper + keep * state["latents"]
