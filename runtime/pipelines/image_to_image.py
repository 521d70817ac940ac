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
from .conditioners.image_latents import ImageLatents
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength


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
        size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
        return self.generate(self.open_call(size, [ImageLatents(pixels)], strength=strength))
