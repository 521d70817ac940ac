"""``StableDiffusionXLPipeline``: SDXL text-to-image (two text encoders, pooled embeddings, time ids)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .guided import GuidedCall, TextGuidedPipeline
from .lora import LoraMixin
from .outputs import StableDiffusionXLPipelineOutput
from .sdxl_prompts import SDXLPromptEncoder
from .textual_inversion import TextualInversionMixin
from .timesteps import cut_at_denoising_end, retrieve_timesteps


class StableDiffusionXLPipeline(TextualInversionMixin, LoraMixin, TextGuidedPipeline):
    embedding_slots = (("text_encoder", "tokenizer", "clip_l"), ("text_encoder_2", "tokenizer_2", "clip_g"))

    """SDXL: ``pipe(prompt, prompt_2=None, guidance_scale=5.0, original_size=..., crops_coords_top_left=...)``."""

    required_components = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
    _callback_tensor_inputs = (
        "latents",
        "prompt_embeds",
        "add_text_embeds",
        "add_time_ids",
        "negative_prompt_embeds",
        "negative_pooled_prompt_embeds",
        "negative_add_time_ids",
    )

    parts = (
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
    ) -> None:
        """diffusers' constructor; ``force_zeros_for_empty_prompt`` defaults to the bundle's (the model's)
        setting; sdrt adds no watermark (``add_watermarker=True`` is refused)."""
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

    def _config_values(self) -> dict[str, Any]:
        return {"force_zeros_for_empty_prompt": self.force_zeros_for_empty_prompt}

    @property
    def force_zeros_for_empty_prompt(self) -> bool:
        if self._force_zeros is not None:
            return bool(self._force_zeros)
        value = self.manifest.text.force_zeros_for_empty_prompt if self.manifest.text else None
        return True if value is None else bool(value)  # diffusers' default for SDXL

    @property
    def prompt_encoder(self) -> SDXLPromptEncoder:
        encoders = [(self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)]
        return SDXLPromptEncoder(
            encoders, self.xp, self.force_zeros_for_empty_prompt, clip_skip=bool(self.clip_skip)
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
        height, width = height or default_height, width or default_width
        self.check_inputs(height, width, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        guidance = self.guidance(guidance_scale, guidance_rescale)
        embeds = self.prompt_encoder.encode(
            prompt,
            prompt_2,
            num_images_per_prompt,
            guidance.enabled,
            negative_prompt,
            negative_prompt_2,
            prompt_embeds,
            negative_prompt_embeds,
            pooled_prompt_embeds,
            negative_pooled_prompt_embeds,
        )
        timesteps, num_inference_steps = retrieve_timesteps(
            self.scheduler, num_inference_steps, timesteps, sigmas
        )
        noise = self.noise_source(generator, embeds.batch)
        latents = self.prepare_latents(
            embeds.batch, self.unet.config.in_channels, height, width, noise, latents
        )
        time_ids = self.time_ids(
            original_size or (height, width), crops_coords_top_left, target_size or (height, width)
        )
        negative_time_ids = time_ids
        if negative_original_size is not None and negative_target_size is not None:
            negative_time_ids = self.time_ids(
                negative_original_size, negative_crops_coords_top_left, negative_target_size
            )
        if denoising_end is not None and 0 < denoising_end < 1:
            timesteps = cut_at_denoising_end(self.scheduler, timesteps, denoising_end)
            num_inference_steps = len(timesteps)
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(0)
        call = GuidedCall(latents, timesteps, num_inference_steps, embeds, guidance, noise, eta)
        call.state = self.added_conditions(embeds, time_ids, negative_time_ids, guidance.enabled)
        call.unet_inputs = {"text_embeds": "add_text_embeds", "time_ids": "add_time_ids"}
        return self.generate(
            call,
            output_type=output_type,
            return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )

    def output(self, images: Any, return_dict: bool) -> StableDiffusionXLPipelineOutput | tuple:
        return StableDiffusionXLPipelineOutput(images) if return_dict else (images,)

    def added_conditions(
        self, embeds: Any, time_ids: Any, negative_time_ids: Any, guided: bool
    ) -> dict[str, Any]:
        """The UNet's ``text_embeds`` and ``time_ids`` per row, and the negative ones the callbacks see."""
        xp = self.xp
        add_text_embeds, add_time_ids = embeds.pooled, time_ids
        if guided:
            add_text_embeds = xp.concatenate([embeds.negative_pooled, add_text_embeds])
            add_time_ids = xp.concatenate([negative_time_ids, add_time_ids])
        # diffusers repeats the [negative, positive] pair as a block: rows alternate negative, positive
        return {
            "add_text_embeds": add_text_embeds,
            "add_time_ids": xp.tile(add_time_ids, (embeds.batch, 1)),
            "negative_pooled_prompt_embeds": embeds.negative_pooled,
            "negative_add_time_ids": negative_time_ids,
        }

    def time_ids(self, original_size: Sequence[int], crops: Sequence[int], target_size: Sequence[int]) -> Any:
        """[[orig_h, orig_w, crop_top, crop_left, target_h, target_w]] (float32)."""
        values = [*original_size, *crops, *target_size]
        if len(values) != 6:
            raise InputError("original_size, crops_coords_top_left and target_size must each be 2 numbers")
        return self.xp.asarray(np.asarray([values], dtype=np.float32))
