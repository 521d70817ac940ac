"""``StableDiffusionPipeline``: text-to-image for Stable Diffusion 1.x / 2.x bundles, as diffusers runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline, StableDiffusionPipelineOutput, retrieve_timesteps
from .guidance import apply_guidance
from .prompts import encode_prompt, prompt_list


class StableDiffusionPipeline(DiffusionPipeline):
    """Text-to-image: ``pipe(prompt, negative_prompt=..., num_inference_steps=50, guidance_scale=7.5)``."""

    required_components = ("text_encoder", "unet", "vae_decoder")
    model_types = ("sd1", "sd2")
    _callback_tensor_inputs = ("latents", "prompt_embeds", "negative_prompt_embeds")

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        num_images_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
    ) -> tuple[Any, Any]:
        return encode_prompt(
            self,
            prompt_list(prompt, prompt_embeds),
            num_images_per_prompt,
            do_classifier_free_guidance,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
        )

    def do_guidance(self, guidance_scale: float) -> bool:
        return guidance_scale > 1 and self.unet.config.time_cond_proj_dim is None

    def prepare_latents(
        self,
        batch_size: int,
        num_channels: int,
        height: int,
        width: int,
        noise: NoiseSource,
        latents: Any = None,
    ) -> Any:
        """Initial noise (or the caller's ``latents``) times the scheduler's ``init_noise_sigma``."""
        shape = (batch_size, num_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is None:
            latents = noise.randn(shape)
        else:
            latents = self.to_xp(latents)
            if tuple(latents.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(latents.shape)}, expected {shape}")
        return latents * self.scheduler.init_noise_sigma

    def check_inputs(self, height: int, width: int, num_images_per_prompt: int, steps: Sequence[str]) -> None:
        self.check_size(height, width)
        if num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")
        self.check_callback_inputs(steps)

    def __call__(
        self,
        prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
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
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        self.check_inputs(height, width, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        do_cfg = self.do_guidance(guidance_scale)
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, num_images_per_prompt, do_cfg, negative_prompt, prompt_embeds, negative_prompt_embeds
        )
        batch = prompt_embeds.shape[0]
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, self.xp)
        if do_cfg:
            prompt_embeds = self.xp.concatenate([negative_prompt_embeds, prompt_embeds])
        timesteps, num_inference_steps = retrieve_timesteps(
            self.scheduler, num_inference_steps, timesteps, sigmas
        )
        latents = self.prepare_latents(batch, self.unet.config.in_channels, height, width, noise, latents)
        return self.denoise_guided(
            latents,
            prompt_embeds,
            negative_prompt_embeds,
            timesteps,
            num_inference_steps,
            do_cfg=do_cfg,
            guidance_scale=guidance_scale,
            guidance_rescale=guidance_rescale,
            noise=noise,
            eta=eta,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            output_type=output_type,
            return_dict=return_dict,
        )

    def denoise_guided(
        self,
        latents: Any,
        prompt_embeds: Any,
        negative_prompt_embeds: Any,
        timesteps: Any,
        num_inference_steps: int,
        *,
        do_cfg: bool,
        guidance_scale: float,
        guidance_rescale: float,
        noise: Any,
        eta: float,
        callback_on_step_end: Any,
        callback_on_step_end_tensor_inputs: Any,
        output_type: str,
        return_dict: bool,
    ) -> Any:
        """The text-guided denoising loop from prepared latents, then the decode (text-to-image, img2img)."""
        state = {
            "latents": latents,
            "prompt_embeds": prompt_embeds,
            "negative_prompt_embeds": negative_prompt_embeds,
        }

        def predict(state: dict[str, Any], t: Any) -> Any:
            return self.guided_noise(
                state["latents"], t, do_cfg, guidance_scale, guidance_rescale, state["prompt_embeds"]
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
        return StableDiffusionPipelineOutput(images) if return_dict else (images, None)

    def guided_noise(
        self,
        latents: Any,
        t: Any,
        do_cfg: bool,
        guidance_scale: float,
        guidance_rescale: float,
        encoder_hidden_states: Any,
        extra_channels: Sequence[Any] = (),
        **added_cond: Any,
    ) -> Any:
        """One UNet evaluation: duplicate for guidance, ``scale_model_input``, extra channels, guide."""
        latent_model_input = self.xp.concatenate([latents] * 2) if do_cfg else latents
        latent_model_input = self.scheduler.scale_model_input(latent_model_input, t)
        if extra_channels:
            latent_model_input = self.xp.concatenate([latent_model_input, *extra_channels], axis=1)
        noise_pred = self.unet(latent_model_input, t, encoder_hidden_states, **added_cond)
        if do_cfg:
            noise_pred = apply_guidance(self.xp, noise_pred, guidance_scale, guidance_rescale)
        return noise_pred
