"""``StableDiffusionAdapterPipeline``: text-to-image guided by T2I-Adapters (sketch, depth, pose...), as diffusers
runs it, for bundles built with ``build-engine --adapter``.

Each adapter is its own engine, run once per call on its conditioning image; the features (scaled, several
adapters weighted and summed) go to the UNet at every step (``conditioners.adapter.AdapterFeatures``), whose
graph takes them as ``down_intrablock_additional_residual_*`` inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdrt.runtime.images import ImageInput
from sdrt.runtime.random.noise import GeneratorLike

from .adapter_part import AdapterPart
from .call_state import pipeline_call, take_callback
from .conditioners.adapter import AdapterFeatures
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase


class StableDiffusionAdapterPipeline(StableDiffusionBase):
    """``pipe(prompt, image=condition_image, adapter_conditioning_scale=1.0)``; with several adapters, ``image`` and
    (optionally) the scales are lists, one per adapter."""

    parts = (*(p for p in StableDiffusionBase.parts if p != "image_encoder"), "adapter")
    part_loaders = (AdapterPart,)

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        adapter: Any = None,
        scheduler: Any = None,
        safety_checker: Any = None,
        feature_extractor: Any = None,
        requires_safety_checker: bool = True,
    ) -> None:
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=safety_checker,
            feature_extractor=feature_extractor,
            requires_safety_checker=requires_safety_checker,
        )
        self.adapter = AdapterPart.accept(type(self).__name__, adapter)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
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
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
        adapter_conditioning_scale: float | list[float] = 1.0,
        clip_skip: int | None = None,
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: the adapter's conditioning image (PIL, resized to
        ``height`` x ``width``, default: its own size floored to the adapter's downscale factor; or a NumPy
        HWC / torch CHW array of the call's size), or a list (several adapters: one per adapter).
        ``output_type``: "pil", "latent", else NumPy (diffusers' ``decode_latents``). ``kwargs``: sdrt's own
        options, as in StableDiffusionPipeline (``prompt_syntax``...)."""
        take_callback(self._state, callback, callback_steps)
        if output_type not in ("pil", "latent"):
            self.call_arguments()["output_type"] = "np"
        features = AdapterFeatures.from_arguments(
            self.adapter, image, (height, width), adapter_conditioning_scale
        )
        return self.generate(self.open_call(features.size, [features]))
