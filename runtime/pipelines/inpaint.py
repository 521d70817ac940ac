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
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import StableDiffusionPipelineOutput, retrieve_timesteps
from .image_to_image import StableDiffusionImg2ImgPipeline, _repeat_to


class StableDiffusionInpaintPipeline(StableDiffusionImg2ImgPipeline):
    """Inpainting: ``pipe(prompt, image=init_image, mask_image=mask)`` (white = repaint)."""

    model_types = ("inpaint", "sd1", "sd2")

    def prepare_mask_latents(
        self,
        mask: np.ndarray,
        masked_image: Any,
        batch_size: int,
        height: int,
        width: int,
        noise: NoiseSource,
        do_cfg: bool,
    ) -> tuple[Any, Any]:
        """Mask at latent size and the masked image's latents, repeated to the batch (doubled for guidance)."""
        xp = self.xp
        mask = self.to_xp(
            nearest_resize(mask, height // self.vae_scale_factor, width // self.vae_scale_factor)
        )
        masked_image_latents = self.encode_image(masked_image, noise)
        mask = _repeat_to(xp, mask, batch_size, "mask")
        masked_image_latents = _repeat_to(xp, masked_image_latents, batch_size, "masked image")
        if do_cfg:
            mask = xp.concatenate([mask] * 2)
            masked_image_latents = xp.concatenate([masked_image_latents] * 2)
        return mask, masked_image_latents

    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        mask_image: ImageInput = None,
        masked_image_latents: Any = None,
        height: int | None = None,
        width: int | None = None,
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
        output_type: str = "pil",
        return_dict: bool = True,
        guidance_rescale: float = 0.0,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> StableDiffusionPipelineOutput | tuple:
        xp = self.xp
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        self.check_inputs(height, width, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        self.check_strength(strength)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        init_image = preprocess_image(image, height, width, self.vae_scale_factor)
        mask_condition = preprocess_mask(mask_image, height, width, self.vae_scale_factor)
        do_cfg = self.do_guidance(guidance_scale)
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, num_images_per_prompt, do_cfg, negative_prompt, prompt_embeds, negative_prompt_embeds
        )
        batch = prompt_embeds.shape[0]
        if do_cfg:
            prompt_embeds = xp.concatenate([negative_prompt_embeds, prompt_embeds])
        timesteps, num_inference_steps = retrieve_timesteps(
            self.scheduler, num_inference_steps, timesteps, sigmas
        )
        timesteps, num_inference_steps = self.get_timesteps(num_inference_steps, strength)
        if num_inference_steps < 1:
            raise InputError(
                f"After adjusting the num_inference_steps by strength parameter: {strength}, the number of pipeline"
                f"steps is {num_inference_steps} which is < 1 and not appropriate for this pipeline."
            )
        latent_timestep = np.repeat(np.asarray(timesteps[:1]), batch)
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, xp)
        plain_unet = self.unet.config.in_channels == 4
        latents, initial_noise, image_latents = self._prepare_latents(
            batch,
            height,
            width,
            noise,
            latents,
            self.to_xp(init_image),
            latent_timestep,
            strength == 1.0,
            plain_unet,
        )
        if masked_image_latents is None:
            masked_image = self.to_xp(init_image * (mask_condition < 0.5))
        else:
            masked_image = self.to_xp(masked_image_latents)
        mask, masked_image_latents = self.prepare_mask_latents(
            mask_condition, masked_image, batch, height, width, noise, do_cfg
        )
        if not plain_unet:
            channels = latents.shape[1] + mask.shape[1] + masked_image_latents.shape[1]
            if channels != self.unet.config.in_channels:
                raise InputError(
                    f"the UNet takes {self.unet.config.in_channels} channels but latents, mask and masked image "
                    f"give {channels}"
                )
        state = {
            "latents": latents,
            "prompt_embeds": prompt_embeds,
            "negative_prompt_embeds": negative_prompt_embeds,
            "mask": mask,
            "masked_image_latents": masked_image_latents,
        }

        def predict(state: dict[str, Any], t: Any) -> Any:
            extra = () if plain_unet else (state["mask"], state["masked_image_latents"])
            return self.guided_noise(
                state["latents"], t, do_cfg, guidance_scale, guidance_rescale, state["prompt_embeds"], extra
            )

        def blend(i: int, t: Any, state: dict[str, Any]) -> None:
            mask = state["mask"]
            init_mask = mask[: mask.shape[0] // 2] if do_cfg else mask
            init_latents_proper = image_latents
            if i < len(timesteps) - 1:
                next_t = np.asarray([timesteps[i + 1]])
                init_latents_proper = self.scheduler.add_noise(init_latents_proper, initial_noise, next_t)
            state["latents"] = (1 - init_mask) * init_latents_proper + init_mask * state["latents"]

        latents = self.denoise(
            state,
            timesteps,
            num_inference_steps,
            predict,
            noise=noise,
            eta=eta,
            after_step=blend if plain_unet else None,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        images = self.decode_latents(latents, output_type)
        return StableDiffusionPipelineOutput(images) if return_dict else (images, None)

    def _prepare_latents(
        self,
        batch: int,
        height: int,
        width: int,
        noise: NoiseSource,
        latents: Any,
        image: Any,
        timestep: Any,
        is_strength_max: bool,
        return_image_latents: bool,
    ) -> tuple[Any, Any, Any]:
        """(latents, the noise drawn for them, the image's latents when needed) — diffusers' order of draws."""
        shape = (
            batch,
            self.vae.config.latent_channels,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        image_latents = None
        if return_image_latents or (latents is None and not is_strength_max):
            image_latents = _repeat_to(self.xp, self.encode_image(image, noise), batch, "image")
        if latents is None:
            drawn = noise.randn(shape)
            if is_strength_max:
                latents = drawn * self.scheduler.init_noise_sigma
            else:
                latents = self.scheduler.add_noise(image_latents, drawn, timestep)
        else:
            drawn = self.to_xp(latents)
            if tuple(drawn.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(drawn.shape)}, expected {shape}")
            latents = drawn * self.scheduler.init_noise_sigma
        return latents, drawn, image_latents
