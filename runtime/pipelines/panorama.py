"""``StableDiffusionPanoramaPipeline``: wide (or tall) pictures from SD 1.x / 2.x bundles by MultiDiffusion
(``multidiffusion.py``), as diffusers runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from . import decoding
from .call_state import pipeline_call
from .multidiffusion import STRIDE, MultiDiffusion, check_panorama, get_views
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase


class StableDiffusionPanoramaPipeline(StableDiffusionBase):
    """``pipe(prompt, height=512, width=2048, view_batch_size=1, circular_padding=False)``: the UNet denoises
    512x512 views every 64 pixels; the engines' size range must hold the views and the whole panorama
    (the VAE decodes it at once; 128 pixels wider with ``circular_padding``)."""

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        height: int | None = 512,
        width: int | None = 2048,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        guidance_scale: float = 7.5,
        view_batch_size: int = 1,
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
        circular_padding: bool = False,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults (see ``StableDiffusionPipeline.__call__`` for what sdrt refuses)."""
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        views = get_views(height, width, circular_padding=circular_padding)
        check_panorama(self, height, width, views, circular_padding, output_type != "latent")
        call = self.open_call((height, width))
        call.step = MultiDiffusion(self, call, views, view_batch_size, circular_padding)
        return self.generate(call)

    def decode_latents(self, latents: Any, output_type: str = "pil") -> Any:
        """The panorama decoded at once; with ``circular_padding``, wrapped 8 latent columns each side first."""
        padding = STRIDE if self.call_arguments().get("circular_padding") else 0
        return decoding.decode_latents(self, latents, output_type, padding)
