"""What the pipelines conditioned on an image instead of a prompt share (image variation, Paint-by-Example): the
``image_encoder`` engine and CLIP's processor in place of the text encoder and tokenizer, diffusers'
constructor, and the embeddings as the UNet's ``encoder_hidden_states`` (one token per image)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .arrays import repeat_rows
from .guided import Guidance, TextGuidedPipeline
from .image_embeds import check_encoder, clip_processor, encode_images
from .parts import check_part
from .prompts import PromptEmbeds


class ImageGuidedBase(TextGuidedPipeline):
    """A family whose "prompt" is an image: its task sets ``image_argument`` (the call argument encoded) and
    ``uncond_embeds`` (how the unconditional embedding is made)."""

    required_components: tuple[str, ...] = ("image_encoder", "unet", "vae_decoder")
    parts: tuple[str, ...] = (
        "vae",
        "image_encoder",
        "unet",
        "scheduler",
        "safety_checker",
        "feature_extractor",
    )
    embedding_slots = ()  # no text encoder: no textual inversion
    image_argument = "image"

    def __init__(
        self,
        vae: Any = None,
        image_encoder: Any = None,
        unet: Any = None,
        scheduler: Any = None,
        safety_checker: Any = None,
        feature_extractor: Any = None,
        requires_safety_checker: bool = False,
    ) -> None:
        """diffusers' constructor: ``image_encoder``, the bundle's engine; ``feature_extractor``, sdrt's
        ``CLIPImageProcessor`` or transformers' (its settings are read), by default the bundle's;
        ``safety_checker`` must be None (sdrt runs none)."""
        check_part(type(self).__name__, "safety_checker", safety_checker)
        check_encoder(type(self).__name__, image_encoder)
        self.image_encoder = image_encoder  # before the engine check of the base
        TextGuidedPipeline.__init__(self, vae=vae, unet=unet, scheduler=scheduler)
        self.feature_extractor = clip_processor(self.bundle, feature_extractor)
        self.safety_checker = None
        self.requires_safety_checker = requires_safety_checker

    def _config_values(self) -> dict[str, Any]:
        return {"requires_safety_checker": self.requires_safety_checker}

    def encode_call_prompts(self, arguments: Mapping[str, Any], guidance: Guidance) -> PromptEmbeds:
        """The image's embeddings [images x num_images_per_prompt, 1, D]; with guidance, the unconditional ones."""
        outputs = encode_images(self, arguments[self.image_argument], self.image_argument)
        embeds = outputs["image_embeds"]
        embeds = embeds if embeds.ndim == 3 else embeds[:, None, :]
        embeds = repeat_rows(self.xp, embeds, arguments.get("num_images_per_prompt", 1))
        negative = self.uncond_embeds(outputs, embeds) if guidance.enabled else None
        return PromptEmbeds(embeds, negative)

    def uncond_embeds(self, outputs: Mapping[str, Any], embeds: Any) -> Any:
        """Zeros, as diffusers' image variation guides."""
        return self.xp.zeros_like(embeds)
