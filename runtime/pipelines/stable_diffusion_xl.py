"""What the SDXL pipelines share: two text encoders and their tokenizers, diffusers' SDXL ``encode_prompt``,
``force_zeros_for_empty_prompt``, the micro-conditioning (``time_ids``) and the output class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError

from .conditioners.sdxl_conditions import AddedConditions
from .guided import Guidance, TextGuidedPipeline
from .outputs import StableDiffusionXLPipelineOutput
from .prompts import PromptEmbeds
from .sdxl_prompts import SDXLPromptEncoder
from .weighted_prompts import sequence_limit


class StableDiffusionXLBase(TextGuidedPipeline):
    """The SDXL family: two text encoders, pooled embeddings, micro-conditioning (``added_conditions``);
    each task adds its ``__call__`` and conditioners."""

    embedding_slots = (("text_encoder", "tokenizer", "clip_l"), ("text_encoder_2", "tokenizer_2", "clip_g"))

    required_components: tuple[str, ...] = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
    _callback_tensor_inputs: tuple[str, ...] = (
        "latents",
        "prompt_embeds",
        "add_text_embeds",
        "add_time_ids",
        "negative_prompt_embeds",
        "negative_pooled_prompt_embeds",
        "negative_add_time_ids",
    )

    parts: tuple[str, ...] = (
        "vae",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "unet",
        "scheduler",
        "image_encoder",
        "feature_extractor",
    )

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        text_encoder_2: Any = None,
        tokenizer: Any = None,
        tokenizer_2: Any = None,
        unet: Any = None,
        scheduler: Any = None,
        image_encoder: Any = None,
        feature_extractor: Any = None,
        force_zeros_for_empty_prompt: bool | None = None,
        add_watermarker: bool | None = None,
        requires_aesthetics_score: bool | None = None,
    ) -> None:
        """diffusers' constructor; ``force_zeros_for_empty_prompt`` and (img2img, inpainting)
        ``requires_aesthetics_score`` default to the bundle's (the model's) settings; sdrt adds no watermark
        (``add_watermarker=True`` is refused)."""
        if add_watermarker:
            raise InputError("add_watermarker=True: sdrt adds no invisible watermark; pass None or False")
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
        )
        self.image_encoder = self.feature_extractor = None
        self._force_zeros = force_zeros_for_empty_prompt
        self._aesthetics = requires_aesthetics_score

    def _config_values(self) -> dict[str, Any]:
        return {"force_zeros_for_empty_prompt": self.force_zeros_for_empty_prompt}

    @property
    def requires_aesthetics_score(self) -> bool:
        """A refiner's time ids hold an aesthetic score where a base's hold the target size."""
        if self._aesthetics is not None:
            return bool(self._aesthetics)
        return bool(self.manifest.text and self.manifest.text.requires_aesthetics_score)

    @property
    def force_zeros_for_empty_prompt(self) -> bool:
        if self._force_zeros is not None:
            return bool(self._force_zeros)
        value = self.manifest.text.force_zeros_for_empty_prompt if self.manifest.text else None
        return True if value is None else bool(value)  # diffusers' default for SDXL

    @property
    def prompt_encoder(self) -> SDXLPromptEncoder:
        encoders = [(self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)]
        encoders = [pair for pair in encoders if pair[1] is not None]  # a refiner: the second only
        syntax = self._state.prompt_syntax if self._state is not None else None
        limit = sequence_limit(self.manifest) if syntax else None
        return SDXLPromptEncoder(
            encoders, self.xp, self.force_zeros_for_empty_prompt, bool(self.clip_skip), syntax, limit
        )

    def encode_call_prompts(self, arguments: Mapping[str, Any], guidance: Guidance) -> PromptEmbeds:
        return self.prompt_encoder.encode(
            arguments["prompt"],
            arguments["prompt_2"],
            arguments.get("num_images_per_prompt", 1),
            guidance.enabled,
            arguments.get("negative_prompt"),
            arguments.get("negative_prompt_2"),
            arguments.get("prompt_embeds"),
            arguments.get("negative_prompt_embeds"),
            arguments.get("pooled_prompt_embeds"),
            arguments.get("negative_pooled_prompt_embeds"),
        )

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        prompt_2: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
        negative_prompt: str | list[str] | None = None,
        negative_prompt_2: str | list[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
    ) -> tuple[Any, Any, Any, Any]:
        """diffusers' SDXL ``encode_prompt``: (prompt_embeds, negative_prompt_embeds, pooled, negative_pooled)."""
        e = self.prompt_encoder.encode(
            prompt,
            prompt_2,
            num_images_per_prompt,
            do_classifier_free_guidance,
            negative_prompt,
            negative_prompt_2,
            prompt_embeds,
            negative_prompt_embeds,
            pooled_prompt_embeds,
            negative_pooled_prompt_embeds,
        )
        return e.prompt_embeds, e.negative_prompt_embeds, e.pooled, e.negative_pooled

    def output(self, images: Any, return_dict: bool) -> StableDiffusionXLPipelineOutput | tuple:
        return StableDiffusionXLPipelineOutput(images) if return_dict else (images,)

    def added_conditions(self, size: tuple[int, int]) -> AddedConditions:
        """The call's ``original_size``, ``crops_coords_top_left``, ``target_size`` (and the negative ones) as
        SDXL's added conditions; ``size``: the call's (height, width), the default of the sizes."""
        arguments = self.call_arguments()
        time_ids = self.time_ids(
            arguments["original_size"] or size,
            arguments["crops_coords_top_left"],
            arguments["target_size"] or size,
        )
        negative_time_ids = time_ids
        negative_original, negative_target = (
            arguments["negative_original_size"],
            arguments["negative_target_size"],
        )
        if negative_original is not None and negative_target is not None:
            negative_time_ids = self.time_ids(
                negative_original, arguments["negative_crops_coords_top_left"], negative_target
            )
        return AddedConditions(time_ids, negative_time_ids)

    def image_added_conditions(self, size: tuple[int, int]) -> AddedConditions:
        """The added conditions of diffusers' SDXL img2img and inpainting pipelines: with
        ``requires_aesthetics_score`` (a refiner) the original size, crop and ``aesthetic_score`` (the negative
        ones: ``negative_aesthetic_score``), else the original size, crop and target size; rows in blocks."""
        a = self.call_arguments()  # ControlNet inpainting has no negative sizes: the positive ones
        original, target = a["original_size"] or size, a["target_size"] or size
        negative_original = a.get("negative_original_size") or original
        negative_target = a.get("negative_target_size") or target
        if self.requires_aesthetics_score:
            values = [*original, *a["crops_coords_top_left"], a["aesthetic_score"]]
            negative = [
                *negative_original,
                *a.get("negative_crops_coords_top_left", a["crops_coords_top_left"]),
                a["negative_aesthetic_score"],
            ]
        else:  # diffusers pairs the negative sizes with the positive crop here
            values = [*original, *a["crops_coords_top_left"], *target]
            negative = [*negative_original, *a["crops_coords_top_left"], *negative_target]
        self.check_time_ids(len(values))
        as_row = [np.asarray([v], dtype=np.float32) for v in (values, negative)]
        return AddedConditions(*(self.xp.asarray(row) for row in as_row), blocks=True)

    def check_time_ids(self, count: int) -> None:
        """``count`` time ids against the UNet engine's ``time_ids`` width (5 for a refiner, 6 for a base)."""
        spec = self.unet.record.inputs.get("time_ids") if self.unet is not None else None
        width = spec.shape[-1] if spec is not None else None
        if isinstance(width, int) and width != count:
            fix = "True" if width == 5 else "False"
            raise InputError(
                f"the UNet takes {width} time ids but requires_aesthetics_score={self.requires_aesthetics_score} "
                f"makes {count}; load the pipeline with requires_aesthetics_score={fix} (or leave it to the bundle)"
            )

    def time_ids(self, original_size: Sequence[int], crops: Sequence[int], target_size: Sequence[int]) -> Any:
        """[[orig_h, orig_w, crop_top, crop_left, target_h, target_w]] (float32)."""
        values = [*original_size, *crops, *target_size]
        if len(values) != 6:
            raise InputError("original_size, crops_coords_top_left and target_size must each be 2 numbers")
        return self.xp.asarray(np.asarray([values], dtype=np.float32))
