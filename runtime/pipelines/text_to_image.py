"""``StableDiffusionPipeline``: text-to-image for Stable Diffusion 1.x / 2.x bundles, as diffusers runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .ip_adapter import ip_adapter_conditioners
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase


class StableDiffusionPipeline(StableDiffusionBase):
    """Text-to-image: ``pipe(prompt, negative_prompt=..., num_inference_steps=50, guidance_scale=7.5)``."""

    runs_ip_adapter = True  # ip_adapter_image(_embeds), over a bundle built with --ip-adapter

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guidance_rescale: float = 0.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``output_type``: "pil", "np", "pt" (with torch) or "latent".
        ``ip_adapter_image`` / ``ip_adapter_image_embeds``: a bundle built with ``--ip-adapter`` (one adapter, one
        image), scaled by ``set_ip_adapter_scale``. ``callback`` / ``callback_steps`` (deprecated) work as in
        diffusers, with its warning."""
        default_height, default_width = self.default_size()
        size = (height or default_height, width or default_width)
        return self.generate(self.open_call(size, ip_adapter_conditioners(self)))
