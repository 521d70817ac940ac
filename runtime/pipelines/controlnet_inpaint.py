"""``StableDiffusionControlNetInpaintPipeline``: repaint the white part of a mask, guided by control images,
as diffusers runs it on an SD 1.x / 2.x bundle (a 4-channel UNet: after every step the unmasked part is the
image's latents noised to the next timestep, ``inpaint``'s pieces), with the ControlNets' residuals each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image, preprocess_mask
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .control import prepare_control_images
from .controlnet import StableDiffusionControlNetPipeline
from .guided import GuidedCall
from .inpaint import RepaintOutsideMask, StableDiffusionInpaintPipeline
from .outputs import StableDiffusionPipelineOutput
from .timesteps import check_strength, retrieve_timesteps, strength_timesteps


class StableDiffusionControlNetInpaintPipeline(StableDiffusionControlNetPipeline):
    """``pipe(prompt, image=init_image, mask_image=mask, control_image=edges)`` (white = repaint)."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
    # model types sd1 / sd2 (inherited): a 4-channel UNet, so the unmasked part is blended back after each step
    prepare_latents_from = StableDiffusionInpaintPipeline.prepare_latents_from
    prepare_mask_latents = StableDiffusionInpaintPipeline.prepare_mask_latents

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        mask_image: ImageInput = None,
        control_image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        padding_mask_crop: int | None = None,
        strength: float = 1.0,
        num_inference_steps: int = 50,
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
        controlnet_conditioning_scale: float | list[float] = 0.5,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image`` and ``mask_image`` at ``height`` x ``width`` (default:
        the image's own size); ``control_image`` as ``StableDiffusionControlNetPipeline``'s ``image``, resized
        to that size."""
        control, guess_mode = self.control_settings(
            control_image,
            controlnet_conditioning_scale,
            control_guidance_start,
            control_guidance_end,
            guess_mode,
        )
        check_strength(strength)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        init_image = preprocess_image(image, height, width, self.vae_scale_factor)
        height, width = init_image.shape[2:]
        mask = preprocess_mask(mask_image, height, width, self.vae_scale_factor)
        self.check_inputs(height, width, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        guidance = self.guidance(guidance_scale)
        embeds = self.prompt_encoder.encode(
            prompt,
            num_images_per_prompt,
            guidance.enabled,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
        )
        doubled = guidance.enabled and not guess_mode
        images = prepare_control_images(
            control.images, height, width, embeds.batch, num_images_per_prompt, doubled, self.vae_scale_factor
        )
        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps)
        timesteps, num_inference_steps = strength_timesteps(self.scheduler, num_inference_steps, strength)
        noise = self.noise_source(generator, embeds.batch)
        latents, initial_noise, image_latents = self.prepare_latents_from(
            embeds.batch,
            height,
            width,
            noise,
            latents,
            self.to_xp(init_image),
            timesteps,
            strength == 1.0,
            True,
        )
        masked = self.to_xp(init_image * (mask < 0.5))
        mask, masked = self.prepare_mask_latents(
            mask, masked, embeds.batch, height, width, noise, guidance.enabled
        )
        call = GuidedCall(latents, timesteps, num_inference_steps, embeds, guidance, noise, eta)
        call.state = {"mask": mask, "masked_image_latents": masked}
        call.after_step = RepaintOutsideMask(
            self.scheduler, image_latents, initial_noise, timesteps, guidance.enabled
        )
        return self.generate(
            self.add_control(call, control, images, guess_mode),
            output_type=output_type,
            return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
