"""``StableDiffusionDiffEditPipeline``: edit an image where two prompts disagree (Couairon et al.,
https://arxiv.org/abs/2210.11427), on SD 1.x / 2.x bundles with a VAE encoder, in diffusers' three steps:

    mask = pipe.generate_mask(image=image, source_prompt="a bowl of fruits", target_prompt="a bowl of pears")
    inv_latents = pipe.invert(prompt="a bowl of fruits", image=image).latents
    image = pipe(prompt="a bowl of pears", mask_image=mask, image_latents=inv_latents).images[0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike
from sdrt.schedulers import get_scheduler_class

from .call_state import copy_scheduler, pipeline_call, take_callback
from .conditioners.image_latents import ImageLatents
from .diffedit_steps import (
    InvertedTrajectory,
    Trajectory,
    check_mask_options,
    diffedit_mask,
    inverse_timesteps,
    mask_output,
    semantic_mask,
)
from .image_latents import noised_image_latents
from .outputs import DiffEditInversionPipelineOutput, StableDiffusionPipelineOutput
from .prompts import prompt_list
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength, strength_timesteps


class StableDiffusionDiffEditPipeline(StableDiffusionBase):
    """``generate_mask`` (where the prompts disagree), ``invert`` (DDIM inversion of the image with
    ``inverse_scheduler``, by default a ``DDIMInverseScheduler`` of the bundle's scheduler config), then
    ``pipe(prompt, mask_image, image_latents)``. ``num_reg_steps`` > 0 (regularizing the inversion by
    gradients) is not run: sdrt's engines give no gradients."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
    parts = (*StableDiffusionBase.parts, "inverse_scheduler")

    def __init__(self, *args: Any, inverse_scheduler: Any = None, **parts: Any) -> None:
        super().__init__(*args, **parts)
        if inverse_scheduler is None:
            inverse_scheduler = get_scheduler_class("DDIMInverseScheduler").from_config(self.scheduler.config)
        self.inverse_scheduler = inverse_scheduler

    def prompt_batch(self, prompt: Any, prompt_embeds: Any) -> int:
        prompts = prompt_list(prompt, prompt_embeds)
        return len(prompts) if prompts is not None else int(prompt_embeds.shape[0])

    @pipeline_call
    def generate_mask(
        self,
        image: ImageInput = None,
        target_prompt: str | list[str] | None = None,
        target_negative_prompt: str | list[str] | None = None,
        target_prompt_embeds: Any = None,
        target_negative_prompt_embeds: Any = None,
        source_prompt: str | list[str] | None = None,
        source_negative_prompt: str | list[str] | None = None,
        source_prompt_embeds: Any = None,
        source_negative_prompt_embeds: Any = None,
        num_maps_per_mask: int | None = 10,
        mask_encode_strength: float | None = 0.5,
        mask_thresholding_ratio: float | None = 3.0,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        generator: GeneratorLike = None,
        output_type: str | None = "np",
        cross_attention_kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """The mask [batch, h, w] at latent size (1: edit), from one UNet evaluation of the image noised to
        ``mask_encode_strength`` under both prompts, averaged over ``num_maps_per_mask`` noise draws.

        diffusers 0.3x swaps each prompt's positive and negative embeddings here (``encode_prompt``'s order
        unpacked the other way round), which changes nothing while the two negative prompts are the same (the
        mask is scale-free) and fails without guidance; sdrt guides as named."""
        check_mask_options(num_maps_per_mask, mask_thresholding_ratio, mask_encode_strength)
        assert isinstance(num_maps_per_mask, int) and mask_thresholding_ratio is not None
        if image is None:
            raise InputError("`image` input cannot be undefined.")
        batch = self.prompt_batch(target_prompt, target_prompt_embeds)
        guidance = self.guidance(guidance_scale)
        encoder, n, cfg = self.prompt_encoder, num_maps_per_mask, guidance.enabled
        target = encoder.encode(
            target_prompt, n, cfg, target_negative_prompt, target_prompt_embeds, target_negative_prompt_embeds
        )
        source = encoder.encode(
            source_prompt, n, cfg, source_negative_prompt, source_prompt_embeds, source_negative_prompt_embeds
        )
        pixels = preprocess_image(image, scale_factor=self.vae_scale_factor)
        self.check_size(pixels.shape[2], pixels.shape[3])
        pixels = self.xp.repeat(self.to_xp(pixels), n, axis=0)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        timesteps, _ = strength_timesteps(scheduler, num_inference_steps, float(mask_encode_strength or 0))
        noise = self.noise_source(generator, batch * n)
        latents = noised_image_latents(self.vae, scheduler, pixels, timesteps, batch * n, noise)
        model_input = self.xp.concatenate([latents] * (4 if cfg else 2))
        model_input = scheduler.scale_model_input(model_input, timesteps[0])
        parts = [source, target]
        embeds = [
            e
            for p in parts
            for e in ((p.negative_prompt_embeds, p.prompt_embeds) if cfg else (p.prompt_embeds,))
        ]
        noise_pred = self.unet(model_input, timesteps[0], self.xp.concatenate(embeds))
        mask = semantic_mask(
            self.xp, noise_pred, batch, guidance_scale if cfg else None, mask_thresholding_ratio
        )
        return mask_output(mask, output_type or "np")

    @pipeline_call
    def invert(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        num_inference_steps: int = 50,
        inpaint_strength: float = 0.8,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        generator: GeneratorLike = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        decode_latents: bool = False,
        output_type: str | None = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int | None = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
        lambda_auto_corr: float = 20.0,
        lambda_kl: float = 20.0,
        num_reg_steps: int = 0,
        num_auto_corr_rolls: int = 5,
    ) -> DiffEditInversionPipelineOutput | tuple:
        """The image's DDIM inversion: the latents after every step, [batch, steps, C, h, w] from the most
        noised (where the edit starts) to the least; decoded too with ``decode_latents``."""
        if num_reg_steps:
            raise InputError(
                f"num_reg_steps={num_reg_steps}: regularizing the inversion needs gradients through the noise "
                "prediction, which sdrt does not run; pass num_reg_steps=0 (the default)"
            )
        take_callback(self._state, callback, callback_steps)
        check_strength(inpaint_strength)
        if image is None:
            raise InputError("`image` input cannot be undefined.")
        channels = self.vae.config.latent_channels
        pixels = preprocess_image(image, scale_factor=self.vae_scale_factor, latent_channels=channels)
        scale = self.vae_scale_factor if pixels.shape[1] == channels else 1
        state = self._state
        assert state is not None
        state.scheduler = copy_scheduler(self.inverse_scheduler)  # the call steps the inverse scheduler
        trajectory = Trajectory()
        size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
        call = self.open_call(size, [ImageLatents(pixels, add_noise=False), trajectory])
        call.timesteps, call.num_inference_steps = inverse_timesteps(
            state.scheduler, num_inference_steps, inpaint_strength
        )
        self.run_loop(call)
        latents = self.xp.stack(trajectory.latents[::-1], axis=1)
        images = None
        if decode_latents:
            flat = latents.reshape(-1, *latents.shape[2:])
            images = self.decode_latents(flat, "pil" if output_type == "pil" else "np")
        return DiffEditInversionPipelineOutput(latents, images) if return_dict else (latents, images)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        mask_image: ImageInput = None,
        image_latents: Any = None,
        inpaint_strength: float | None = 0.8,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int | None = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        output_type: str | None = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
    ) -> StableDiffusionPipelineOutput | tuple:
        """The edit: denoise from the inverted latents with ``prompt``, keeping the region outside
        ``mask_image`` (latent size, from ``generate_mask``) on the inverted trajectory ``image_latents``
        (``invert``'s, with the same ``num_inference_steps`` and ``inpaint_strength``). ``latents`` is
        ignored, as in diffusers."""
        take_callback(self._state, callback, callback_steps)
        strength = 0.8 if inpaint_strength is None else inpaint_strength
        check_strength(strength)
        mask = diffedit_mask(mask_image, self.prompt_batch(prompt, prompt_embeds))
        size = (mask.shape[2] * self.vae_scale_factor, mask.shape[3] * self.vae_scale_factor)
        conditioner = InvertedTrajectory(mask, image_latents)
        return self.generate(self.open_call(size, [conditioner], strength=strength))


__all__ = ["StableDiffusionDiffEditPipeline"]
