"""``LDMSuperResolutionPipeline``: 4x super-resolution by latent diffusion (e.g.
CompVis/ldm-super-resolution-4x-openimages): the UNet2DModel denoises VQ-VAE latents at the low-resolution image's
size, taking the image as 3 more input channels; the VQ-VAE decodes them (without a scaling factor, as diffusers).
The image as diffusers' ``preprocess`` makes it: a PIL image floored to a multiple of 32 (Lanczos), in [-1, 1];
arrays and torch tensors as they are (NCHW in [-1, 1])."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .call_state import pipeline_call
from .ldm import eta_options
from .outputs import ImagePipelineOutput
from .repaint_inputs import image_arrays, image_items
from .unconditional import UnconditionalPipeline


def preprocess(image: Any) -> np.ndarray:
    """diffusers' ``preprocess`` of the low-resolution picture -> float32 NCHW in [-1, 1]."""
    items = image_items(image, "image")
    if not isinstance(items[0], Image.Image):
        return image_arrays(items, "image")
    if len(items) > 1:
        raise InputError(
            "`image`: LDMSuperResolutionPipeline takes one PIL image (or an NCHW array of several)"
        )
    picture = items[0]
    if picture.mode != "RGB":
        raise InputError(
            f"`image` must be an RGB picture, got a {picture.mode} one; pass image.convert('RGB')"
        )
    w, h = (x - x % 32 for x in picture.size)
    if not w or not h:
        raise InputError(f"`image` is {picture.width}x{picture.height}; it must be at least 32x32 pixels")
    pixels = np.array(picture.resize((w, h), resample=Image.Resampling.LANCZOS)).astype(np.float32) / 255.0
    return 2.0 * pixels[None].transpose(0, 3, 1, 2) - 1.0


class LDMSuperResolutionPipeline(UnconditionalPipeline):
    """``LDMSuperResolutionPipeline(vqvae, unet, scheduler)``; ``pipe(image, batch_size=1, num_inference_steps=100,
    eta=0.0, generator=None, output_type="pil", return_dict=True)``: images 4x (the VQ-VAE's scale) the input's."""

    parts = ("vqvae", "unet", "scheduler")
    vae_part = "vqvae"
    required_components = ("unet", "vae_decoder")
    vqvae: Any

    def __init__(self, vqvae: Any = None, unet: Any = None, scheduler: Any = None) -> None:
        DiffusionPipeline.__init__(self, vqvae=vqvae, unet=unet, scheduler=scheduler)

    def low_resolution(self, image: Any) -> np.ndarray:
        """The preprocessed image, checked against the UNet's channels and the engines' sizes."""
        pixels = preprocess(image)
        channels = int(self.unet.config.in_channels) // 2
        if pixels.ndim != 4 or pixels.shape[1] != channels:
            raise InputError(
                f"`image` must be {channels}-channel NCHW pixels (a PIL RGB picture), got shape {pixels.shape}"
            )
        height, width = pixels.shape[2:]
        try:
            self.check_size(height * self.vae_scale_factor, width * self.vae_scale_factor)
        except InputError as error:
            raise InputError(
                f"`image` of {width}x{height} pixels makes a {width * self.vae_scale_factor}x"
                f"{height * self.vae_scale_factor} output: {error}"
            ) from None
        return pixels

    @pipeline_call
    def __call__(
        self,
        image: Any = None,
        batch_size: int = 1,
        num_inference_steps: int = 100,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """``image``: the low-resolution picture (its batch is the output's; ``batch_size`` is ignored, as
        diffusers ignores it); ``eta``: DDIM's, where the scheduler takes it."""
        pixels = self.to_xp(self.low_resolution(image))
        batch, _, height, width = pixels.shape
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, self.xp)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        latents = noise.randn((batch, int(self.unet.config.in_channels) // 2, height, width))
        latents = latents * scheduler.init_noise_sigma
        options = eta_options(scheduler, eta, noise)
        for t in self.progress_bar(scheduler.timesteps):
            model_input = scheduler.scale_model_input(self.xp.concatenate([latents, pixels], axis=1), t)
            latents = scheduler.step(self.unet(model_input, t), t, latents, **options).prev_sample
        image = self.vqvae.decode(latents).clip(-1.0, 1.0)
        return self.images_out(image / 2 + 0.5, output_type, return_dict)
