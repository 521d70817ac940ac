"""``StableDiffusionXLPipeline``: SDXL text-to-image (two text encoders, pooled embeddings, time ids)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .ip_adapter import ip_adapter_conditioners
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import cut_at_denoising_end


class StableDiffusionXLPipeline(StableDiffusionXLBase):
    """SDXL: ``pipe(prompt, prompt_2=None, guidance_scale=5.0, original_size=..., crops_coords_top_left=...)``."""

    runs_ip_adapter = True  # ip_adapter_image(_embeds), over a bundle built with --ip-adapter

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        denoising_end: float | None = None,
        guidance_scale: float = 5.0,
        negative_prompt: str | list[str] | None = None,
        negative_prompt_2: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guidance_rescale: float = 0.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        negative_original_size: tuple[int, int] | None = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: tuple[int, int] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionXLPipelineOutput | tuple:
        """diffusers' arguments and defaults; unsupported options are refused as in StableDiffusionPipeline."""
        default_height, default_width = self.default_size()
        size = (height or default_height, width or default_width)
        self.check_size(*size)
        call = self.open_call(size, [self.added_conditions(size), *ip_adapter_conditioners(self)])
        if denoising_end is not None and 0 < denoising_end < 1:
            call.timesteps = cut_at_denoising_end(self.scheduler, call.timesteps, denoising_end)
            call.num_inference_steps = len(call.timesteps)
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(0)
        return self.generate(call)
