"""``UnconditionalPipeline``: what the pipelines of UNet2DModel bundles share (DDPM, DDIM, PNDM, RePaint, score SDE
VE, Karras VE, consistency models): the UNet's fixed sample shape, the first noise, the pixels out."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import numpy_to_pil, to_host
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .nan_causes import nonfinite_error
from .outputs import ImagePipelineOutput


class UnconditionalPipeline(DiffusionPipeline):
    """A pipeline of pixels straight from a UNet2DModel (no VAE, no text); ``pipe(unet=, scheduler=)``."""

    required_components = ("unet",)
    output_types = ("pil", "np")

    def __init__(self, unet: Any = None, scheduler: Any = None) -> None:
        super().__init__(unet=unet, scheduler=scheduler)

    def sample_shape(self, batch_size: int) -> tuple[int, int, int, int]:
        """(batch, channels, height, width) of the UNet's samples."""
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (batch_size, int(self.unet.config.in_channels), int(height), int(width))

    def first_noise(
        self, batch_size: int, generator: GeneratorLike, latents: Any = None
    ) -> tuple[Any, NoiseSource]:
        """The starting noise of ``batch_size`` samples (``latents`` where given) and the call's noise source."""
        shape = self.sample_shape(batch_size)
        check_generator_list(generator, batch_size)
        noise = NoiseSource(generator, self.xp)
        if latents is None:
            return noise.randn(shape), noise
        sample = self.to_xp(latents)
        if tuple(sample.shape) != shape:
            raise InputError(f"`latents` have shape {tuple(sample.shape)}, expected {shape}")
        return sample, noise

    def images_out(self, pixels: Any, output_type: str, return_dict: bool) -> ImagePipelineOutput | tuple:
        """NCHW pixels in [0, 1] (clipped here) -> images of ``output_type``; NaN or Inf pixels are an error."""
        if not bool(self.xp.isfinite(pixels).all()):
            raise nonfinite_error(self, "the denoising loop produced NaN/Inf pixels", "unet")
        image: Any = to_host(pixels.clip(0, 1)).transpose(0, 2, 3, 1)
        if output_type == "pil":
            image = numpy_to_pil(image)
        return ImagePipelineOutput(image) if return_dict else (image,)
