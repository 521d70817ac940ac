"""``StableDiffusionXLPipeline``: SDXL text-to-image (two text encoders, pooled embeddings, time ids)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import retrieve_timesteps
from .prompts import negative_list, prompt_list, repeat_rows
from .text_to_image import StableDiffusionPipeline


class StableDiffusionXLPipelineOutput:
    def __init__(self, images: Any) -> None:
        self.images = images

    def __getitem__(self, index: int) -> Any:
        return (self.images,)[index]


class StableDiffusionXLPipeline(StableDiffusionPipeline):
    """SDXL: ``pipe(prompt, prompt_2=None, guidance_scale=5.0, original_size=..., crops_coords_top_left=...)``."""

    required_components = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
    model_types = ("sdxl",)
    _callback_tensor_inputs = (
        "latents",
        "prompt_embeds",
        "add_text_embeds",
        "add_time_ids",
        "negative_prompt_embeds",
        "negative_pooled_prompt_embeds",
        "negative_add_time_ids",
    )

    @property
    def force_zeros_for_empty_prompt(self) -> bool:
        value = self.manifest.text.force_zeros_for_empty_prompt if self.manifest.text else None
        return True if value is None else bool(value)  # diffusers' default for SDXL

    def _encode_pair(self, prompts: list[str], prompts_2: list[str], max_length: int) -> tuple[Any, Any]:
        """Penultimate hidden states of both encoders side by side, and the second encoder's pooled output."""
        hidden, pooled = [], None
        for texts, tokenizer, encoder in (
            (prompts, self.tokenizer, self.text_encoder),
            (prompts_2, self.tokenizer_2, self.text_encoder_2),
        ):
            ids = tokenizer(texts, padding="max_length", max_length=max_length, truncation=True).input_ids
            outputs = encoder(ids)
            if "penultimate_hidden_state" not in outputs:
                raise InputError(
                    f"the {encoder.name} engine has no `penultimate_hidden_state` output, which SDXL needs; "
                    "rebuild the bundle with build-engine"
                )
            if pooled is None and "text_embeds" in outputs:
                pooled = outputs["text_embeds"]
            hidden.append(outputs["penultimate_hidden_state"])
        if pooled is None:
            raise InputError("no SDXL text encoder engine has a `text_embeds` output (pooled embeddings)")
        return self.xp.concatenate(hidden, axis=-1), pooled

    def encode_prompt(  # type: ignore[override]
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
        xp = self.xp
        prompts = prompt_list(prompt, prompt_embeds)
        if prompt_embeds is None:
            prompts_2 = prompt_list(prompt_2 or prompts)
            if len(prompts_2) != len(prompts):
                raise InputError(f"`prompt_2` has {len(prompts_2)} entries, `prompt` {len(prompts)}")
            prompt_embeds, pooled_prompt_embeds = self._encode_pair(
                prompts, prompts_2, self.tokenizer.model_max_length
            )
        elif pooled_prompt_embeds is None:
            raise InputError("with `prompt_embeds`, pass `pooled_prompt_embeds` too")
        prompt_embeds, pooled_prompt_embeds = self.to_xp(prompt_embeds), self.to_xp(pooled_prompt_embeds)
        batch_size = prompt_embeds.shape[0]
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            if negative_prompt is None and self.force_zeros_for_empty_prompt:
                negative_prompt_embeds = xp.zeros_like(prompt_embeds)
                negative_pooled_prompt_embeds = xp.zeros_like(pooled_prompt_embeds)
            else:
                negatives = negative_list(negative_prompt or "", batch_size)
                negatives_2 = negative_list(negative_prompt_2 or negative_prompt or "", batch_size)
                negative_prompt_embeds, negative_pooled_prompt_embeds = self._encode_pair(
                    negatives, negatives_2, prompt_embeds.shape[1]
                )
        elif do_classifier_free_guidance and negative_pooled_prompt_embeds is None:
            raise InputError("with `negative_prompt_embeds`, pass `negative_pooled_prompt_embeds` too")
        n = num_images_per_prompt
        prompt_embeds, pooled_prompt_embeds = (
            repeat_rows(xp, prompt_embeds, n),
            repeat_rows(xp, pooled_prompt_embeds, n),
        )
        if do_classifier_free_guidance:
            negative_prompt_embeds = repeat_rows(xp, self.to_xp(negative_prompt_embeds), n)
            negative_pooled_prompt_embeds = repeat_rows(xp, self.to_xp(negative_pooled_prompt_embeds), n)
        return prompt_embeds, negative_prompt_embeds, pooled_prompt_embeds, negative_pooled_prompt_embeds

    def __call__(  # type: ignore[override]
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
        output_type: str = "pil",
        return_dict: bool = True,
        guidance_rescale: float = 0.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        negative_original_size: tuple[int, int] | None = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: tuple[int, int] | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> StableDiffusionXLPipelineOutput | tuple:
        xp = self.xp
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        original_size = original_size or (height, width)
        target_size = target_size or (height, width)
        self.check_inputs(height, width, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        do_cfg = self.do_guidance(guidance_scale)
        prompt_embeds, negative_prompt_embeds, pooled, negative_pooled = self.encode_prompt(
            prompt,
            prompt_2,
            num_images_per_prompt,
            do_cfg,
            negative_prompt,
            negative_prompt_2,
            prompt_embeds,
            negative_prompt_embeds,
            pooled_prompt_embeds,
            negative_pooled_prompt_embeds,
        )
        batch = prompt_embeds.shape[0]
        timesteps, num_inference_steps = retrieve_timesteps(
            self.scheduler, num_inference_steps, timesteps, sigmas
        )
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, xp)
        latents = self.prepare_latents(batch, self.unet.config.in_channels, height, width, noise, latents)
        add_time_ids = self.time_ids(original_size, crops_coords_top_left, target_size)
        if negative_original_size is not None and negative_target_size is not None:
            negative_add_time_ids = self.time_ids(
                negative_original_size, negative_crops_coords_top_left, negative_target_size
            )
        else:
            negative_add_time_ids = add_time_ids
        add_text_embeds = pooled
        if do_cfg:
            prompt_embeds = xp.concatenate([negative_prompt_embeds, prompt_embeds])
            add_text_embeds = xp.concatenate([negative_pooled, add_text_embeds])
            add_time_ids = xp.concatenate([negative_add_time_ids, add_time_ids])
        # diffusers repeats the [negative, positive] pair as a block: rows alternate negative, positive
        add_time_ids = xp.tile(add_time_ids, (batch, 1))
        timesteps = self._cut_at_denoising_end(timesteps, denoising_end)
        if denoising_end is not None and 0 < denoising_end < 1:
            num_inference_steps = len(timesteps)
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(0)
        state = {
            "latents": latents,
            "prompt_embeds": prompt_embeds,
            "add_text_embeds": add_text_embeds,
            "add_time_ids": add_time_ids,
            "negative_prompt_embeds": negative_prompt_embeds,
            "negative_pooled_prompt_embeds": negative_pooled,
            "negative_add_time_ids": negative_add_time_ids,
        }

        def predict(state: dict[str, Any], t: Any) -> Any:
            return self.guided_noise(
                state["latents"],
                t,
                do_cfg,
                guidance_scale,
                guidance_rescale,
                state["prompt_embeds"],
                text_embeds=state["add_text_embeds"],
                time_ids=state["add_time_ids"],
            )

        latents = self.denoise(
            state,
            timesteps,
            num_inference_steps,
            predict,
            noise=noise,
            eta=eta,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        images = self.decode_latents(latents, output_type)
        return StableDiffusionXLPipelineOutput(images) if return_dict else (images,)

    def time_ids(self, original_size: Sequence[int], crops: Sequence[int], target_size: Sequence[int]) -> Any:
        """[[orig_h, orig_w, crop_top, crop_left, target_h, target_w]] (float32)."""
        values = [*original_size, *crops, *target_size]
        if len(values) != 6:
            raise InputError("original_size, crops_coords_top_left and target_size must each be 2 numbers")
        return self.xp.asarray(np.asarray([values], dtype=np.float32))

    def _cut_at_denoising_end(self, timesteps: Any, denoising_end: float | None) -> Any:
        if denoising_end is None or not 0 < denoising_end < 1:
            return timesteps
        train_steps = self.scheduler.config.num_train_timesteps
        cutoff = int(round(train_steps - denoising_end * train_steps))
        count = len([t for t in timesteps if t >= cutoff])
        return timesteps[:count]
