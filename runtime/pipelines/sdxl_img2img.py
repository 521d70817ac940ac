"""``StableDiffusionXLImg2ImgPipeline``: SDXL image-to-image, for a base model or a refiner (the second text
encoder only, an aesthetic score in the time ids), and the refiner's half of a base + refiner ensemble
(``denoising_start``: pick up the base's latents where its ``denoising_end`` stopped)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.base import Conditioner
from .conditioners.image_latents import ImageLatents
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import check_denoising_fractions, check_strength


class StableDiffusionXLImg2ImgPipeline(StableDiffusionXLBase):
    """SDXL img2img: ``pipe(prompt, image=init_image, strength=0.3)``; a refiner after a base:
    ``pipe(prompt, image=base_latents, denoising_start=0.8)``."""

    required_components = ("text_encoder_2", "unet", "vae_decoder", "vae_encoder")
    optional_components = ("text_encoder",)  # a refiner has none
    _callback_tensor_inputs = (
        "latents",
        "prompt_embeds",
        "negative_prompt_embeds",
        "add_text_embeds",
        "add_time_ids",
        "negative_pooled_prompt_embeds",
        "add_neg_time_ids",
    )

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image: ImageInput = None,
        strength: float = 0.3,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        denoising_start: float | None = None,
        denoising_end: float | None = None,
        guidance_scale: float = 5.0,
        negative_prompt: str | list[str] | None = None,
        negative_prompt_2: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guidance_rescale: float = 0.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        negative_original_size: tuple[int, int] | None = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: tuple[int, int] | None = None,
        aesthetic_score: float = 6.0,
        negative_aesthetic_score: float = 2.5,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionXLPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL, NumPy HWC/NHWC in [0, 1] (uint8 in 0..255),
        torch CHW/NCHW, or 4-channel latents (a base's ``output_type="latent"``). ``strength`` in (0, 1];
        ``denoising_start`` / ``denoising_end`` in [0, 1] (values strictly inside cut the schedule)."""
        check_strength(strength, zero=False)
        check_denoising_fractions(denoising_start, denoising_end)
        channels = self.vae.config.latent_channels
        pixels = latent_array(image, channels)
        if pixels is None:
            pixels = preprocess_image(image, scale_factor=self.vae_scale_factor, latent_channels=channels)
        scale = self.vae_scale_factor if pixels.shape[1] == channels else 1
        size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
        starts = denoising_start is not None and 0 < denoising_start < 1
        conditioners: list[Conditioner] = [ImageLatents(pixels, latents, add_noise=denoising_start is None)]
        conditioners.append(self.image_added_conditions(size))
        call = self.open_call(
            size,
            conditioners,
            strength=strength,
            denoising=(denoising_start if starts else None, denoising_end),
        )
        return self.generate(call)


def latent_array(image: Any, channels: int) -> Any:
    """A NumPy / CuPy N x C x h x w array of ``channels`` latent channels (what an sdrt pipeline's
    ``output_type="latent"`` gives; diffusers' is a torch tensor, which ``preprocess_image`` takes), else None."""
    shape = getattr(image, "shape", None)
    if type(image).__module__.split(".")[0] not in ("numpy", "cupy") or shape is None:
        return None
    if len(shape) == 4 and shape[1] == channels and shape[-1] not in (1, 3):
        return image.astype("float32")
    return None
