"""``LatentConsistencyModelImg2ImgPipeline``: image-to-image with a latent consistency model, as diffusers
runs it: ``strength`` handed to ``LCMScheduler.set_timesteps`` (which keeps the low-noise part of its
distillation schedule), the image's latents noised to the first timestep, the last ``denoised`` decoded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.image_latents import ImageLatents
from .outputs import StableDiffusionPipelineOutput
from .sampling import CONSISTENCY
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength


class LatentConsistencyModelImg2ImgPipeline(StableDiffusionBase):
    """Image-to-image: ``pipe(prompt, image=init_image, num_inference_steps=4, strength=0.8)``."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
    sampling = CONSISTENCY
    _callback_tensor_inputs: tuple[str, ...] = ("latents", "denoised", "prompt_embeds", "w_embedding")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        num_inference_steps: int = 4,
        strength: float = 0.8,
        original_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        guidance_scale: float = 8.5,
        num_images_per_prompt: int = 1,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults (see ``LatentConsistencyModelPipeline``); ``image`` as
        ``StableDiffusionImg2ImgPipeline`` takes it; ``latents``, when given, are the starting latents as they
        are (diffusers skips the image's encoding then)."""
        check_strength(strength)
        pixels = preprocess_image(
            image, scale_factor=self.vae_scale_factor, latent_channels=self.vae.config.latent_channels
        )
        scale = self.vae_scale_factor if pixels.shape[1] == self.vae.config.latent_channels else 1
        size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
        return self.generate(self.open_call(size, [ImageLatents(pixels, latents)], strength=strength))
