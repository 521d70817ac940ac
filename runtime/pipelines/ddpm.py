"""``DDPMPipeline``: unconditional image generation with a UNet2DModel bundle (e.g. the DDPM "cat" models)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


class DDPMPipeline(UnconditionalPipeline):
    """``pipe(batch_size=1, generator=None, num_inference_steps=1000, output_type="pil")``: pixels straight
    from the UNet (no VAE, no text)."""

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
        image, noise = self.first_noise(batch_size, generator, latents)
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
        return self.images_out(image / 2 + 0.5, output_type, return_dict)
