"""What Stable Diffusion 1.x / 2.x's pipelines (text-to-image, img2img, inpainting, depth, ControlNet) share:
their components, their callback tensors and diffusers' ``encode_prompt``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .guided import Guidance, TextGuidedPipeline
from .outputs import StableDiffusionPipelineOutput
from .prompts import PromptEmbeds, PromptEncoder
from .safety import accept_feature_extractor, accept_safety_checker, run_safety_checker, warn_if_disabled
from .weighted_prompts import sequence_limit


class StableDiffusionBase(TextGuidedPipeline):
    """The SD 1.x / 2.x family: one CLIP text encoder; each task adds its ``__call__`` and conditioners."""

    required_components: tuple[str, ...] = ("text_encoder", "unet", "vae_decoder")
    optional_components: tuple[str, ...] = ("safety_checker",)
    parts: tuple[str, ...] = (
        "vae",
        "text_encoder",
        "tokenizer",
        "unet",
        "scheduler",
        "safety_checker",
        "feature_extractor",
        "image_encoder",
    )
    _callback_tensor_inputs: tuple[str, ...] = ("latents", "prompt_embeds", "negative_prompt_embeds")
    safety_checker: Any
    feature_extractor: Any
    image_encoder: Any

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        scheduler: Any = None,
        safety_checker: Any = None,
        feature_extractor: Any = None,
        image_encoder: Any = None,
        requires_safety_checker: bool = True,
    ) -> None:
        """diffusers' constructor: ``StableDiffusionImg2ImgPipeline(**pipe.components)`` shares ``pipe``'s
        engines. ``safety_checker``: the bundle's engine (``build-engine --safety-checker``, or the model folder's
        own), run as diffusers runs it (``safety.py``); ``feature_extractor``: sdrt's or transformers'
        ``CLIPImageProcessor``, by default the bundle's; ``image_encoder`` must be None."""
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            image_encoder=image_encoder,
        )
        name = type(self).__name__
        self.safety_checker = accept_safety_checker(name, safety_checker)
        self.feature_extractor = accept_feature_extractor(
            name, self.bundle, self.safety_checker, feature_extractor
        )
        self.image_encoder = None
        self.requires_safety_checker = requires_safety_checker
        warn_if_disabled(name, self.bundle, self.safety_checker, requires_safety_checker)

    def _config_values(self) -> dict[str, Any]:
        return {"requires_safety_checker": self.requires_safety_checker}

    def run_safety_checker(self, image: Any, output_type: str = "pil") -> tuple[Any, list[bool] | None]:
        """diffusers' ``run_safety_checker`` on a call's output images: (images, flagged images black; the
        flags, or None without a safety checker)."""
        return run_safety_checker(self.safety_checker, self.feature_extractor, image, output_type)

    def output(self, images: Any, return_dict: bool) -> StableDiffusionPipelineOutput | tuple:
        """The call's images, checked by the safety checker where the pipeline has one."""
        images, flags = self.run_safety_checker(images, self.call_arguments().get("output_type", "pil"))
        return StableDiffusionPipelineOutput(images, flags) if return_dict else (images, flags)

    @property
    def prompt_encoder(self) -> PromptEncoder:
        syntax = self._state.prompt_syntax if self._state is not None else None
        limit = sequence_limit(self.manifest) if syntax else None
        return PromptEncoder(self.tokenizer, self.text_encoder, self.xp, bool(self.clip_skip), syntax, limit)

    def encode_call_prompts(self, arguments: Mapping[str, Any], guidance: Guidance) -> PromptEmbeds:
        return self.prompt_encoder.encode(
            arguments["prompt"],
            arguments.get("num_images_per_prompt", 1),
            guidance.enabled,
            arguments.get("negative_prompt"),
            arguments.get("prompt_embeds"),
            arguments.get("negative_prompt_embeds"),
        )

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        num_images_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
    ) -> tuple[Any, Any]:
        """(prompt_embeds, negative_prompt_embeds), each [prompts x num_images_per_prompt, 77, D]."""
        embeds = self.prompt_encoder.encode(
            prompt,
            num_images_per_prompt,
            do_classifier_free_guidance,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
        )
        return embeds.prompt_embeds, embeds.negative_prompt_embeds
