"""``StableDiffusionXLInstructPix2PixPipeline``: SDXL's InstructPix2Pix, as diffusers runs it: the image resized to
``height`` x ``width`` (default: the UNet's sample size), its latents beside the noise (8-channel UNet), the
three-way guidance of ``image_guidance.py`` with SDXL's pooled embeddings and time ids on every row."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdrt.runtime.images import ImageInput
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call, take_callback
from .conditioners.base import Conditioner
from .conditioners.instruct_image import InstructImage
from .instruct_pix2pix import instruct_pixels, with_image_guidance
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase

if TYPE_CHECKING:
    from .guided import GuidedCall, TextGuidedPipeline


class StableDiffusionXLInstructPix2PixPipeline(StableDiffusionXLBase):
    """``pipe("make it snowy", image=image, image_guidance_scale=1.5)``; ``is_cosxl_edit=True``: the image's
    latents scaled by the VAE's scaling factor (CosXL Edit), as diffusers' constructor argument."""

    parts = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")
    required_components = ("text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder")

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        text_encoder_2: Any = None,
        tokenizer: Any = None,
        tokenizer_2: Any = None,
        unet: Any = None,
        scheduler: Any = None,
        force_zeros_for_empty_prompt: bool | None = None,
        add_watermarker: bool | None = None,
        is_cosxl_edit: bool | None = False,
    ) -> None:
        """diffusers' constructor (``force_zeros_for_empty_prompt`` defaults to the bundle's setting)."""
        super().__init__(
            vae,
            text_encoder,
            text_encoder_2,
            tokenizer,
            tokenizer_2,
            unet,
            scheduler,
            force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
            add_watermarker=add_watermarker,
        )
        self.is_cosxl_edit = bool(is_cosxl_edit)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 100,
        denoising_end: float | None = None,
        guidance_scale: float = 5.0,
        image_guidance_scale: float = 1.5,
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
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guidance_rescale: float = 0.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
    ) -> StableDiffusionXLPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL, NumPy HWC/NHWC in [0, 1] (uint8 in 0..255),
        torch CHW/NCHW (4 channels: latents), resized to ``height`` x ``width``."""
        take_callback(self._state, callback, callback_steps)
        default_height, default_width = self.default_size()
        size = (height or default_height, width or default_width)
        self.check_size(*size)
        pixels = instruct_pixels(image, self.vae_scale_factor, self.vae.config.latent_channels, size)
        time_ids = self.time_ids(original_size or size, crops_coords_top_left, target_size or size)
        self.check_time_ids(time_ids.shape[-1])
        conditioners = [
            InstructImage(pixels, latents, scaled=self.is_cosxl_edit),
            ThreeRowConditions(time_ids),
        ]
        call = self.open_call(size, conditioners, denoising=(None, denoising_end))
        return self.generate(with_image_guidance(call, image_guidance_scale, guidance_rescale))

    def do_guidance(self, guidance_scale: float) -> bool:
        """diffusers' ``guidance_scale > 1 and image_guidance_scale >= 1``."""
        image_scale = self.call_arguments().get("image_guidance_scale", 1.5)
        return super().do_guidance(guidance_scale) and image_scale >= 1.0


class ThreeRowConditions(Conditioner):
    """SDXL's ``text_embeds`` and ``time_ids`` for the rows [negative, positive, negative] (one ``time_ids`` row
    for all, as diffusers' InstructPix2Pix repeats it)."""

    def __init__(self, time_ids: Any) -> None:
        self.time_ids = time_ids

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        xp, embeds = pipe.xp, call.embeds
        add_text_embeds = embeds.pooled
        if call.guidance.enabled:
            negative = embeds.negative_pooled
            add_text_embeds = xp.concatenate([negative, add_text_embeds, negative])
        rows = add_text_embeds.shape[0]
        call.state |= {"add_text_embeds": add_text_embeds, "add_time_ids": xp.tile(self.time_ids, (rows, 1))}
        call.unet_inputs |= {"text_embeds": "add_text_embeds", "time_ids": "add_time_ids"}
