"""``StableDiffusionImg2ImgPipeline``: start from a noised encoding of an image, as diffusers does.

``strength`` (0..1) is how much of the schedule runs: the first ``1 - strength`` of the timesteps are
skipped (``set_begin_index``), and the image's latents are noised to the first remaining timestep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import StableDiffusionPipelineOutput, retrieve_timesteps
from .text_to_image import StableDiffusionPipeline


class StableDiffusionImg2ImgPipeline(StableDiffusionPipeline):
    """Image-to-image: ``pipe(prompt, image=init_image, strength=0.8)``."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
    model_types = ("sd1", "sd2")

    def get_timesteps(self, num_inference_steps: int, strength: float) -> tuple[Any, int]:
        """The tail of the schedule that ``strength`` keeps, and its length in steps."""
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        t_start = max(num_inference_steps - init_timestep, 0)
        timesteps = self.scheduler.timesteps[t_start * self.scheduler.order :]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(t_start * self.scheduler.order)
        return timesteps, num_inference_steps - t_start

    def encode_image(self, image: Any, noise: NoiseSource) -> Any:
        """scaling_factor * a sample of the VAE's latent distribution (one draw per row with a list)."""
        if image.shape[1] == self.vae.config.latent_channels:
            return image
        return self.vae.config.scaling_factor * self.vae.encode(image).sample(noise.take(image.shape[0]))

    def prepare_image_latents(self, image: Any, timestep: Any, batch_size: int, noise: NoiseSource) -> Any:
        """Encode, repeat the images to the batch, add noise for ``timestep`` (diffusers' prepare_latents)."""
        if noise.is_list and image.shape[0] < batch_size:
            image = _repeat_to(self.xp, image, batch_size, "image")
        init_latents = self.encode_image(image, noise)
        init_latents = _repeat_to(self.xp, init_latents, batch_size, "image")
        drawn = noise.randn(init_latents.shape)
        return self.scheduler.add_noise(init_latents, drawn, timestep)

    def check_strength(self, strength: float) -> None:
        if not 0 <= strength <= 1:
            raise InputError(f"The value of strength should in [0.0, 1.0] but is {strength}")

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
        output_type: str = "pil",
        return_dict: bool = True,
        guidance_rescale: float = 0.0,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> StableDiffusionPipelineOutput | tuple:
        self.check_strength(strength)
        self.check_callback_inputs(callback_on_step_end_tensor_inputs)
        if num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")
        do_cfg = self.do_guidance(guidance_scale)
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, num_images_per_prompt, do_cfg, negative_prompt, prompt_embeds, negative_prompt_embeds
        )
        batch = prompt_embeds.shape[0]
        if do_cfg:
            prompt_embeds = self.xp.concatenate([negative_prompt_embeds, prompt_embeds])
        pixels = preprocess_image(image, scale_factor=self.vae_scale_factor)
        self.check_size(pixels.shape[2], pixels.shape[3])
        timesteps, num_inference_steps = retrieve_timesteps(
            self.scheduler, num_inference_steps, timesteps, sigmas
        )
        timesteps, num_inference_steps = self.get_timesteps(num_inference_steps, strength)
        if num_inference_steps < 1:
            raise InputError(
                f"strength={strength} with num_inference_steps leaves no denoising step; raise either of them"
            )
        latent_timestep = np.repeat(np.asarray(timesteps[:1]), batch)
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, self.xp)
        latents = self.prepare_image_latents(self.to_xp(pixels), latent_timestep, batch, noise)
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


def _repeat_to(xp: Any, array: Any, batch_size: int, what: str) -> Any:
    """Repeat a batch of ``n`` to ``batch_size`` (a multiple of ``n``), whole batch after whole batch."""
    n = array.shape[0]
    if n == batch_size:
        return array
    if batch_size % n != 0:
        raise InputError(f"Cannot duplicate `{what}` of batch size {n} to effective batch_size {batch_size}.")
    return xp.concatenate([array] * (batch_size // n), axis=0)
