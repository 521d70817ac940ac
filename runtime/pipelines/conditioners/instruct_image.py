"""``InstructImage``: the image an InstructPix2Pix UNet edits, as latent channels beside the latents at every
step (8 input channels), as diffusers' ``prepare_image_latents``: the VAE's mode (``argmax``, no draw), not
scaled (CosXL Edit's: scaled), repeated to the batch; under guidance [image, image, zeros] for the rows
[negative, positive, negative] (``image_guidance.py``). The starting latents are plain noise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..arrays import repeat_to_batch
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class InstructImage(Conditioner):
    """``pixels``: N x 3 x H x W in [-1, 1], or N x 4 x h x w latents (taken as they are); ``latents``: the
    caller's starting noise; ``scaled``: CosXL Edit's latents times the VAE's scaling factor."""

    def __init__(self, pixels: Any, latents: Any = None, *, scaled: bool = False) -> None:
        self.pixels, self.latents, self.scaled = pixels, latents, scaled

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        xp, batch, channels = pipe.xp, call.embeds.batch, pipe.vae.config.latent_channels
        image = pipe.to_xp(self.pixels)
        if image.shape[1] != channels:
            image = pipe.vae.encode(image).mode()
            if self.scaled:
                image = image * pipe.vae.config.scaling_factor
        image_latents = repeat_to_batch(xp, image, batch, "image")
        if call.guidance.enabled:
            image_latents = xp.concatenate([image_latents, image_latents, xp.zeros_like(image_latents)])
        call.state["image_latents"] = image_latents
        call.extra_channels += ("image_latents",)
        height, width = (s * pipe.vae_scale_factor for s in image.shape[2:])
        call.latents = pipe.prepare_latents(batch, channels, height, width, call.noise, self.latents)
