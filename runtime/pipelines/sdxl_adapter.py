"""``StableDiffusionXLAdapterPipeline``: SDXL text-to-image guided by T2I-Adapters, as diffusers runs it, for SDXL
bundles built with ``build-engine --adapter``: the features go to the UNet for the first
``adapter_conditioning_factor`` of the steps (``conditioners.adapter.AdapterFeatures``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdrt.runtime.images import ImageInput
from sdrt.runtime.random.noise import GeneratorLike

from .adapter_part import AdapterPart
from .call_state import pipeline_call, take_callback
from .conditioners.adapter import AdapterFeatures
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import cut_at_denoising_end


class StableDiffusionXLAdapterPipeline(StableDiffusionXLBase):
    """``pipe(prompt, image=condition_image, adapter_conditioning_scale=1.0, adapter_conditioning_factor=1.0)``;
    with several adapters, ``image`` and (optionally) the scales are lists, one per adapter."""

    parts = (*StableDiffusionXLBase.parts, "adapter")
    part_loaders = (AdapterPart,)

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        text_encoder_2: Any = None,
        tokenizer: Any = None,
        tokenizer_2: Any = None,
        unet: Any = None,
        adapter: Any = None,
        scheduler: Any = None,
        force_zeros_for_empty_prompt: bool | None = None,
        feature_extractor: Any = None,
        image_encoder: Any = None,
    ) -> None:
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=unet,
            scheduler=scheduler,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
        )
        self.adapter = AdapterPart.accept(type(self).__name__, adapter)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image: ImageInput = None,
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
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guidance_rescale: float = 0.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        negative_original_size: tuple[int, int] | None = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: tuple[int, int] | None = None,
        adapter_conditioning_scale: float | list[float] = 1.0,
        adapter_conditioning_factor: float = 1.0,
        clip_skip: int | None = None,
        **kwargs: Any,
    ) -> StableDiffusionXLPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: the adapter's conditioning image (PIL, resized to
        ``height`` x ``width``, default: its own size floored to the adapter's downscale factor, also the default
        ``original_size``; or a NumPy HWC / torch CHW array of the call's size), or one per adapter."""
        take_callback(self._state, callback, callback_steps)
        features = AdapterFeatures.from_arguments(
            self.adapter, image, (height, width), adapter_conditioning_scale, adapter_conditioning_factor
        )
        call = self.open_call(features.size, [self.added_conditions(features.size), features])
        if denoising_end is not None and 0 < denoising_end < 1:
            call.timesteps = cut_at_denoising_end(self.scheduler, call.timesteps, denoising_end)
            call.num_inference_steps = len(call.timesteps)
        return self.generate(call)
