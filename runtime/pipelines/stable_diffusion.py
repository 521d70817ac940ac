"""What Stable Diffusion 1.x / 2.x's pipelines (text-to-image, img2img, inpainting) share: their
components, their callback tensors and diffusers' ``encode_prompt``."""

from __future__ import annotations

from typing import Any

from .guided import TextGuidedPipeline
from .prompts import PromptEncoder


class StableDiffusionBase(TextGuidedPipeline):
    required_components: tuple[str, ...] = ("text_encoder", "unet", "vae_decoder")
    model_types: tuple[str, ...] = ("sd1", "sd2")
    _callback_tensor_inputs = ("latents", "prompt_embeds", "negative_prompt_embeds")

    @property
    def prompt_encoder(self) -> PromptEncoder:
        return PromptEncoder(self.tokenizer, self.text_encoder, self.xp)

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
