"""``LatentConsistencyModelPipeline``: text-to-image with a latent consistency model (an LCM UNet, whose
guidance is an embedding of the guidance scale, and ``LCMScheduler``), as diffusers runs it: no negative
prompt, no guidance batch, a few steps, the last step's ``denoised`` sample decoded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .outputs import StableDiffusionPipelineOutput
from .sampling import CONSISTENCY
from .stable_diffusion import StableDiffusionBase


class LatentConsistencyModelPipeline(StableDiffusionBase):
    """Text-to-image: ``pipe(prompt, num_inference_steps=4, guidance_scale=8.5)``."""

    sampling = CONSISTENCY
    _callback_tensor_inputs: tuple[str, ...] = ("latents", "denoised", "prompt_embeds", "w_embedding")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 4,
        original_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        guidance_scale: float = 8.5,
        num_images_per_prompt: int = 1,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults: ``guidance_scale`` reaches the UNet as its ``timestep_cond``
        embedding (of ``guidance_scale - 1``); ``original_inference_steps`` is the distillation schedule
        ``LCMScheduler`` picks from (its config's when None)."""
        default_height, default_width = self.default_size()
        return self.generate(self.open_call((height or default_height, width or default_width)))
