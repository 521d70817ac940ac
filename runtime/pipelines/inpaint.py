"""``StableDiffusionInpaintPipeline``: repaint the white part of a mask, as diffusers does.

Two UNet kinds, as in diffusers:

- an inpainting UNet (9 input channels): every step sees [latents, mask, masked-image latents];
- a plain 4-channel UNet (SD 1.x/2.x bundles): after every step the unmasked part is replaced by the
  image's latents noised to the next timestep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, nearest_resize, preprocess_image, preprocess_mask
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource

from .arrays import repeat_to_batch
from .call_state import pipeline_call
from .guided import GuidedCall
from .image_latents import encode_image
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength, retrieve_timesteps, strength_timesteps


class StableDiffusionInpaintPipeline(StableDiffusionBase):
    """Inpainting: ``pipe(prompt, image=init_image, mask_image=mask)`` (white = repaint)."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        mask_image: ImageInput = None,
        masked_image_latents: Any = None,
        height: int | None = None,
        width: int | None = None,
        padding_mask_crop: int | None = None,
        strength: float = 1.0,
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
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        guidance_rescale: float = 0.0,
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults (``guidance_rescale`` is an sdrt extension). ``mask_image``:
        PIL (converted to grayscale), NumPy HW/NHW/HW1/NHW1 in [0, 1] (uint8 in 0..255), torch HW/NHW/N1HW."""
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        self.check_inputs(height, width, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        check_strength(strength)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        init_image = preprocess_image(image, height, width, self.vae_scale_factor)
        mask = preprocess_mask(mask_image, height, width, self.vae_scale_factor)
        guidance = self.guidance(guidance_scale, guidance_rescale)
        embeds = self.prompt_encoder.encode(
            prompt,
            num_images_per_prompt,
            guidance.enabled,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
        )
        timesteps, num_inference_steps = retrieve_timesteps(
            self.scheduler, num_inference_steps, timesteps, sigmas
        )
        timesteps, num_inference_steps = strength_timesteps(self.scheduler, num_inference_steps, strength)
        noise = self.noise_source(generator, embeds.batch)
        plain_unet = self.unet.config.in_channels == 4
        latents, initial_noise, image_latents = self.prepare_latents_from(
            embeds.batch,
            height,
            width,
            noise,
            latents,
            self.to_xp(init_image),
            timesteps,
            strength == 1.0,
            plain_unet,
        )
        masked = init_image * (mask < 0.5) if masked_image_latents is None else masked_image_latents
        mask, masked = self.prepare_mask_latents(
            mask, self.to_xp(masked), embeds.batch, height, width, noise, guidance.enabled
        )
        call = GuidedCall(latents, timesteps, num_inference_steps, embeds, guidance, noise, eta)
        call.state = {"mask": mask, "masked_image_latents": masked}
        if plain_unet:
            call.after_step = RepaintOutsideMask(
                self.scheduler, image_latents, initial_noise, timesteps, guidance.enabled
            )
        else:
            self.check_channels(latents, mask, masked)
            call.extra_channels = ("mask", "masked_image_latents")
        return self.generate(
            call,
            output_type=output_type,
            return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )

    def prepare_latents_from(
        self,
        batch: int,
        height: int,
        width: int,
        noise: NoiseSource,
        latents: Any,
        image: Any,
        timesteps: Any,
        is_strength_max: bool,
        return_image_latents: bool,
    ) -> tuple[Any, Any, Any]:
        """(latents, the noise drawn for them, the image's latents when needed), drawn in diffusers' order."""
        shape = (
            batch,
            self.vae.config.latent_channels,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        image_latents = None
        if return_image_latents or (latents is None and not is_strength_max):
            image_latents = repeat_to_batch(self.xp, encode_image(self.vae, image, noise), batch, "image")
        if latents is not None:
            drawn = self.to_xp(latents)
            if tuple(drawn.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(drawn.shape)}, expected {shape}")
            return drawn * self.scheduler.init_noise_sigma, drawn, image_latents
        drawn = noise.randn(shape)
        if is_strength_max:
            return drawn * self.scheduler.init_noise_sigma, drawn, image_latents
        timestep = np.repeat(np.asarray(timesteps[:1]), batch)
        return self.scheduler.add_noise(image_latents, drawn, timestep), drawn, image_latents

    def prepare_mask_latents(
        self,
        mask: np.ndarray,
        masked_image: Any,
        batch: int,
        height: int,
        width: int,
        noise: NoiseSource,
        guided: bool,
    ) -> tuple[Any, Any]:
        """Mask at latent size and the masked image's latents, repeated to the batch (doubled for guidance)."""
        xp, scale = self.xp, self.vae_scale_factor
        mask = repeat_to_batch(
            xp, self.to_xp(nearest_resize(mask, height // scale, width // scale)), batch, "mask"
        )
        masked_latents = repeat_to_batch(
            xp, encode_image(self.vae, masked_image, noise), batch, "masked image"
        )
        if guided:
            return xp.concatenate([mask] * 2), xp.concatenate([masked_latents] * 2)
        return mask, masked_latents

    def check_channels(self, latents: Any, mask: Any, masked_latents: Any) -> None:
        channels = latents.shape[1] + mask.shape[1] + masked_latents.shape[1]
        if channels != self.unet.config.in_channels:
            raise InputError(
                f"the UNet takes {self.unet.config.in_channels} channels but latents, mask and masked image give {channels}"
            )


class RepaintOutsideMask:
    """After each step of a plain UNet: outside the mask, the image's latents noised to the next timestep."""

    def __init__(self, scheduler: Any, image_latents: Any, noise: Any, timesteps: Any, guided: bool) -> None:
        self.scheduler = scheduler
        self.image_latents = image_latents
        self.noise = noise
        self.timesteps = timesteps
        self.guided = guided

    def __call__(self, i: int, t: Any, state: dict[str, Any]) -> None:
        mask = state["mask"]
        keep = mask[: mask.shape[0] // 2] if self.guided else mask
        proper = self.image_latents
        if i < len(self.timesteps) - 1:
            proper = self.scheduler.add_noise(proper, self.noise, np.asarray([self.timesteps[i + 1]]))
        state["latents"] = (1 - keep) * proper + keep * state["latents"]
