"""``StableDiffusionXLInpaintPipeline``: SDXL inpainting with an inpainting UNet (9 input channels) or a plain
one (``conditioners/inpaint_mask.py``), a base's or a refiner's (aesthetic score), and ``denoising_start`` /
``denoising_end`` for a base + refiner ensemble."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image, preprocess_mask
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.inpaint_mask import InpaintMask
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import check_denoising_fractions, check_strength


class StableDiffusionXLInpaintPipeline(StableDiffusionXLBase):
    """SDXL inpainting: ``pipe(prompt, image=init_image, mask_image=mask)`` (white = repaint)."""

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
        "mask",
        "masked_image_latents",
    )

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image: ImageInput = None,
        mask_image: ImageInput = None,
        masked_image_latents: Any = None,
        height: int | None = None,
        width: int | None = None,
        padding_mask_crop: int | None = None,
        strength: float = 0.9999,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        denoising_start: float | None = None,
        denoising_end: float | None = None,
        guidance_scale: float = 7.5,
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
        """diffusers' arguments and defaults. ``mask_image``: PIL (converted to grayscale), NumPy
        HW/NHW/HW1/NHW1 in [0, 1] (uint8 in 0..255), torch HW/NHW/N1HW; ``strength`` in (0, 1];
        ``denoising_start`` / ``denoising_end`` in [0, 1]."""
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        self.check_size(height, width)
        check_strength(strength, zero=False)
        check_denoising_fractions(denoising_start, denoising_end)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        starts = denoising_start is not None and 0 < denoising_start < 1
        mask = InpaintMask(
            preprocess_image(image, height, width, self.vae_scale_factor),
            preprocess_mask(mask_image, height, width, self.vae_scale_factor),
            strength=strength,
            masked_image_latents=masked_image_latents,
            latents=latents,
            add_noise=denoising_start is None,
        )
        conditioners = [mask, self.image_added_conditions((height, width))]
        call = self.open_call(
            (height, width),
            conditioners,
            strength=strength,
            denoising=(denoising_start if starts else None, denoising_end),
        )
        return self.generate(call)
