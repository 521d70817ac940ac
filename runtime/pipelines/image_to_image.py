"""``StableDiffusionImg2ImgPipeline``: start from a noised encoding of an image, as diffusers does.

``strength`` (0..1) is how much of the schedule runs: the first ``1 - strength`` of the timesteps are
skipped (``set_begin_index``), and the image's latents are noised to the first remaining timestep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .guided import GuidedCall
from .image_latents import noised_image_latents
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength, retrieve_timesteps, strength_timesteps


class StableDiffusionImg2ImgPipeline(StableDiffusionBase):
    """Image-to-image: ``pipe(prompt, image=init_image, strength=0.8)``."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        strength: float = 0.8,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
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
        """diffusers' arguments and defaults (``guidance_rescale`` is an sdrt extension). ``image``: PIL,
        NumPy HWC/NHWC in [0, 1] (uint8 in 0..255), torch CHW/NCHW (4 channels: latents, as diffusers)."""
        check_strength(strength)
        pixels = preprocess_image(
            image, scale_factor=self.vae_scale_factor, latent_channels=self.vae.config.latent_channels
        )
        scale = self.vae_scale_factor if pixels.shape[1] == self.vae.config.latent_channels else 1
        self.check_inputs(
            pixels.shape[2] * scale,
            pixels.shape[3] * scale,
            num_images_per_prompt,
            callback_on_step_end_tensor_inputs,
        )
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
        latents = noised_image_latents(
            self.vae, self.scheduler, self.to_xp(pixels), timesteps, embeds.batch, noise
        )
        call = GuidedCall(latents, timesteps, num_inference_steps, embeds, guidance, noise, eta)
        return self.generate(
            call,
            output_type=output_type,
            return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
