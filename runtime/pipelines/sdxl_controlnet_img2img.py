"""``StableDiffusionXLControlNetImg2ImgPipeline``: SDXL image-to-image guided by control images, as diffusers runs
it: the init image noised to the first timestep ``strength`` keeps (``ImageLatents``), the img2img time ids
(an aesthetic score for a refiner-like UNet), and every step the ControlNets' residuals (``ControlNetResiduals``,
which take the UNet's added conditions too)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.controlnet import ControlNetResiduals
from .conditioners.image_latents import ImageLatents
from .controlnet_part import ControlNetPart
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import check_strength

SDXL_IMAGE_CALLBACK_INPUTS = (
    "latents",
    "prompt_embeds",
    "negative_prompt_embeds",
    "add_text_embeds",
    "add_time_ids",
    "negative_pooled_prompt_embeds",
    "add_neg_time_ids",
)


class StableDiffusionXLControlNetImg2ImgPipeline(StableDiffusionXLBase):
    """``pipe(prompt, image=init_image, control_image=edges, strength=0.8)``; with several ControlNets,
    ``control_image`` and (optionally) the scales and guidance windows are lists, one per ControlNet."""

    parts = (*StableDiffusionXLBase.parts, "controlnet")
    part_loaders = (ControlNetPart,)
    required_components: tuple[str, ...] = (
        "text_encoder",
        "text_encoder_2",
        "unet",
        "vae_decoder",
        "vae_encoder",
    )
    _callback_tensor_inputs = SDXL_IMAGE_CALLBACK_INPUTS

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        text_encoder_2: Any = None,
        tokenizer: Any = None,
        tokenizer_2: Any = None,
        unet: Any = None,
        controlnet: Any = None,
        scheduler: Any = None,
        requires_aesthetics_score: bool | None = None,
        force_zeros_for_empty_prompt: bool | None = None,
        add_watermarker: bool | None = None,
        feature_extractor: Any = None,
        image_encoder: Any = None,
    ) -> None:
        """diffusers' constructor (``controlnet``: a ControlNet engine, a list or a ``MultiControlNetModel``)."""
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=unet,
            scheduler=scheduler,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
            add_watermarker=add_watermarker,
            requires_aesthetics_score=requires_aesthetics_score,
        )
        self.controlnet = ControlNetPart.accept(type(self).__name__, controlnet)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image: ImageInput = None,
        control_image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        strength: float = 0.8,
        num_inference_steps: int = 50,
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
        controlnet_conditioning_scale: float | list[float] = 0.8,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
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
        """diffusers' arguments and defaults. ``image``: the picture to start from, at ``height`` x ``width``
        (default: its own size); ``control_image``: as ``StableDiffusionXLControlNetPipeline``'s ``image``,
        resized to the picture's size (also the default ``original_size`` and ``target_size``). ``latents``,
        when given, are the starting latents as they are."""
        check_strength(strength)
        if image is None:
            raise InputError("`image` (the picture to start from) is required")
        pixels = preprocess_image(image, height, width, self.vae_scale_factor)
        size = pixels.shape[2], pixels.shape[3]
        self.check_size(*size)
        control = ControlNetResiduals.from_arguments(
            self.controlnet,
            control_image,
            (controlnet_conditioning_scale, control_guidance_start, control_guidance_end, guess_mode),
            size,
            self.vae_scale_factor,
        )
        # the added conditions first: the ControlNets take them too
        conditioners = [ImageLatents(pixels, latents), self.image_added_conditions(size), control]
        return self.generate(self.open_call(size, conditioners, strength=strength))
