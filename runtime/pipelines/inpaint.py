"""``StableDiffusionInpaintPipeline``: repaint the white part of a mask, as diffusers does, with an inpainting
UNet (9 input channels) or a plain one (``conditioners/inpaint_mask.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image, preprocess_mask
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.inpaint_mask import InpaintMask
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength


class StableDiffusionInpaintPipeline(StableDiffusionBase):
    """Inpainting: ``pipe(prompt, image=init_image, mask_image=mask)`` (white = repaint)."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        mask_image: ImageInput = None,
        masked_image_latents: Any = None,
        height: int | None = None,
        width: int | None = None,
        padding_mask_crop: int | None = None,
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
        """diffusers' arguments and defaults (``guidance_rescale`` is an sdrt extension). ``mask_image``:
        PIL (converted to grayscale), NumPy HW/NHW/HW1/NHW1 in [0, 1] (uint8 in 0..255), torch HW/NHW/N1HW."""
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        self.check_size(height, width)
        check_strength(strength)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        mask = InpaintMask(
            preprocess_image(image, height, width, self.vae_scale_factor),
            preprocess_mask(mask_image, height, width, self.vae_scale_factor),
            strength=strength,
            masked_image_latents=masked_image_latents,
            latents=latents,
        )
        return self.generate(self.open_call((height, width), [mask], strength=strength))
