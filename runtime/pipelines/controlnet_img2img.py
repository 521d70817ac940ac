"""``StableDiffusionControlNetImg2ImgPipeline``: image-to-image guided by control images, as diffusers runs it:
the init image noised to the first timestep ``strength`` keeps (``image_to_image``'s pieces), and every step
the ControlNets' residuals (``control.ControlStep``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .control import prepare_control_images
from .controlnet import StableDiffusionControlNetPipeline
from .guided import GuidedCall
from .image_latents import noised_image_latents
from .outputs import StableDiffusionPipelineOutput
from .timesteps import check_strength, retrieve_timesteps, strength_timesteps


class StableDiffusionControlNetImg2ImgPipeline(StableDiffusionControlNetPipeline):
    """``pipe(prompt, image=init_image, control_image=edges, strength=0.8)``."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        control_image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        strength: float = 0.8,
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
        controlnet_conditioning_scale: float | list[float] = 0.8,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: the picture to start from, at ``height`` x ``width``
        (default: its own size); ``control_image``: as ``StableDiffusionControlNetPipeline``'s ``image``,
        resized to the picture's size. ``latents``, when given, are the starting latents as they are."""
        control, guess_mode = self.control_settings(
            control_image,
            controlnet_conditioning_scale,
            control_guidance_start,
            control_guidance_end,
            guess_mode,
        )
        check_strength(strength)
        if image is None:
            raise InputError("`image` (the picture to start from) is required")
        pixels = preprocess_image(image, height, width, self.vae_scale_factor)
        height, width = pixels.shape[2:]
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
        images = prepare_control_images(
            control.images,
            height,
            width,
            embeds.batch,
            num_images_per_prompt,
            guidance.enabled and not guess_mode,
            self.vae_scale_factor,
        )
        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps)
        timesteps, num_inference_steps = strength_timesteps(self.scheduler, num_inference_steps, strength)
        noise = self.noise_source(generator, embeds.batch)
        if latents is None:
            latents = noised_image_latents(
                self.vae, self.scheduler, self.to_xp(pixels), timesteps, embeds.batch, noise
            )
        call = GuidedCall(self.to_xp(latents), timesteps, num_inference_steps, embeds, guidance, noise, eta)
        return self.generate(
            self.add_control(call, control, images, guess_mode),
            output_type=output_type,
            return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
