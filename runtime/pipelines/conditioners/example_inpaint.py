"""``ExampleInpaint``: Paint-by-Example's inpainting inputs, as diffusers prepares them: the starting noise first,
then the masked image's latents (a VAE draw); every step the 9-channel UNet sees [latents, masked-image latents,
mask], where the mask is 1 on the part kept (diffusers' Paint-by-Example inverts the mask it is given)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.images import nearest_resize

from ..arrays import repeat_to_batch
from ..image_latents import encode_image
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class ExampleInpaint(Conditioner):
    """``image`` (N x 3 x H x W in [-1, 1]) and ``keep`` (N x 1 x H x W, 1 = kept: the inverted mask);
    ``latents``: the caller's starting noise."""

    def __init__(self, image: np.ndarray, keep: np.ndarray, latents: Any = None) -> None:
        self.image, self.keep, self.latents = image, keep, latents

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        xp, scale, batch = pipe.xp, pipe.vae_scale_factor, call.embeds.batch
        height, width = self.image.shape[2:]
        channels = pipe.vae.config.latent_channels
        call.latents = pipe.prepare_latents(batch, channels, height, width, call.noise, self.latents)
        keep = nearest_resize(self.keep, height // scale, width // scale)
        keep = repeat_to_batch(xp, pipe.to_xp(keep), batch, "mask_image")
        masked = encode_image(pipe.vae, pipe.to_xp(self.image * self.keep), call.noise)
        masked = repeat_to_batch(xp, masked, batch, "image")
        if call.guidance.enabled:
            keep, masked = xp.concatenate([keep] * 2), xp.concatenate([masked] * 2)
        call.state |= {"mask": keep, "masked_image_latents": masked}
        call.extra_channels += ("masked_image_latents", "mask")
