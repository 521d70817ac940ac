"""``DDPMPipeline``: unconditional image generation with a UNet2DModel bundle (e.g. the DDPM "cat" models)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import EngineError, InputError
from sdrt.runtime.images import numpy_to_pil, to_host
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .call_state import pipeline_call
from .outputs import ImagePipelineOutput


class DDPMPipeline(DiffusionPipeline):
    """``pipe(batch_size=1, generator=None, num_inference_steps=1000, output_type="pil")``: pixels straight
    from the UNet (no VAE, no text)."""

    required_components = ("unet",)
    output_types = ("pil", "np")

    def __init__(self, unet: Any = None, scheduler: Any = None) -> None:
        super().__init__(unet=unet, scheduler=scheduler)

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        generator: GeneratorLike = None,
        num_inference_steps: int = 1000,
        output_type: str = "pil",
        return_dict: bool = True,
        latents: Any = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> ImagePipelineOutput | tuple:
        """``latents`` (an sdrt extension): the initial noise [batch, channels, size, size] instead of a draw."""
        self.check_callback_inputs(callback_on_step_end_tensor_inputs)
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        shape = (batch_size, self.unet.config.in_channels, height, width)
        check_generator_list(generator, batch_size)
        noise = NoiseSource(generator, self.xp)
        if latents is None:
            image = noise.randn(shape)
        else:
            image = self.to_xp(latents)
            if tuple(image.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(image.shape)}, expected {shape}")
        self.scheduler.set_timesteps(num_inference_steps)
        timesteps = self.scheduler.timesteps
        image = self.denoise(
            {"latents": image},
            timesteps,
            len(timesteps),
            lambda state, t: self.unet(state["latents"], t),
            noise=noise,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        if not bool(self.xp.isfinite(image).all()):
            raise EngineError(
                "the denoising loop produced NaN/Inf pixels (the UNet engine or the scheduler); an fp16 UNet "
                "overflowing? rebuild with build-engine --precision fp32"
            )
        image = to_host((image / 2 + 0.5).clip(0, 1)).transpose(0, 2, 3, 1)
        if output_type == "pil":
            image = numpy_to_pil(image)
        return ImagePipelineOutput(image) if return_dict else (image,)
