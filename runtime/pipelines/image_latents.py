"""Images as latents, as diffusers' img2img and inpainting pipelines make them: encoded by the VAE
(one draw of its latent distribution per row), repeated to the batch, noised to a timestep."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdrt.runtime.components import Vae
from sdrt.runtime.random.noise import NoiseSource

from .arrays import repeat_to_batch


def encode_image(vae: Vae, image: Any, noise: NoiseSource) -> Any:
    """scaling_factor x a sample of the VAE's latent distribution; latents pass through as they are."""
    if image.shape[1] == vae.config.latent_channels:
        return image
    return vae.config.scaling_factor * vae.encode(image).sample(noise.take(image.shape[0]))


def noised_image_latents(
    vae: Vae,
    scheduler: Any,
    image: Any,
    timesteps: Any,
    batch_size: int,
    noise: NoiseSource,
    add_noise: bool = True,
) -> Any:
    """The image's latents repeated to the batch and noised to the first of ``timesteps`` (``add_noise``)."""
    xp = noise.xp
    if noise.is_list and image.shape[0] < batch_size:
        image = repeat_to_batch(xp, image, batch_size, "image")
    latents = repeat_to_batch(xp, encode_image(vae, image, noise), batch_size, "image")
    if not add_noise:
        return latents
    timestep = np.repeat(np.asarray(timesteps[:1]), batch_size)
    return scheduler.add_noise(latents, noise.randn(latents.shape), timestep)
