"""``StableDiffusionInstructPix2PixPipeline``: edit an image by an instruction, as diffusers does: an 8-channel
UNet sees the noise latents and the image's latents (``conditioners/instruct_image.py``), guided three ways
by the text and by the image (``image_guidance.py``). Guidance runs when ``guidance_scale > 1`` and
``image_guidance_scale >= 1``, as diffusers' ``do_classifier_free_guidance``; otherwise the prompt alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.instruct_image import InstructImage
from .guided import GuidedCall
from .image_guidance import ImageGuidance
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase


class StableDiffusionInstructPix2PixPipeline(StableDiffusionBase):
    """``pipe("make the mountains snowy", image=image, image_guidance_scale=1.5)``."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
    _callback_tensor_inputs = ("latents", "prompt_embeds", "image_latents")

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        num_inference_steps: int = 100,
        guidance_scale: float = 7.5,
        image_guidance_scale: float = 1.5,
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
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        cross_attention_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL, NumPy HWC/NHWC in [0, 1] (uint8 in 0..255),
        torch CHW/NCHW (4 channels: latents, as diffusers); the output has its size (floored to a multiple
        of 8)."""
        channels = self.vae.config.latent_channels
        pixels = instruct_pixels(image, self.vae_scale_factor, channels)
        scale = self.vae_scale_factor if pixels.shape[1] == channels else 1
        size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
        call = self.open_call(size, [InstructImage(pixels, latents)])
        return self.generate(with_image_guidance(call, image_guidance_scale))

    def do_guidance(self, guidance_scale: float) -> bool:
        """diffusers' ``guidance_scale > 1 and image_guidance_scale >= 1``."""
        image_scale = self.call_arguments().get("image_guidance_scale", 1.5)
        return super().do_guidance(guidance_scale) and image_scale >= 1.0

    @property
    def image_guidance_scale(self) -> float | None:
        """The current call's ``image_guidance_scale`` (None outside a call), as diffusers' property."""
        return self.call_arguments().get("image_guidance_scale")


def instruct_pixels(image: ImageInput, scale_factor: int, latent_channels: int, size: Any = None) -> Any:
    """The image to edit (NCHW in [-1, 1], or latents), at ``size`` (height, width) or its own; none is an
    error naming ``image``, as diffusers'."""
    if image is None:
        raise InputError("`image` input cannot be undefined: pass the picture to edit (PIL, array or tensor)")
    height, width = size if size is not None else (None, None)
    return preprocess_image(image, height, width, scale_factor, latent_channels=latent_channels)


def with_image_guidance(
    call: GuidedCall, image_guidance_scale: float, guidance_rescale: float = 0.0
) -> GuidedCall:
    """``call`` with the three-way rule, where guidance runs (the third row's embeddings: the negative ones)."""
    if call.guidance.enabled:
        negative = call.embeds.negative_prompt_embeds
        call.rule = ImageGuidance(negative, image_guidance_scale, guidance_rescale)
    return call
