"""``StableDiffusionXLControlNetInpaintPipeline``: SDXL inpainting guided by control images, as diffusers runs it:
``InpaintMask`` (a 9-channel inpainting UNet, or a plain one repainted outside the mask each step), the
inpainting time ids, ``denoising_start`` / ``denoising_end``, and every step the ControlNets' residuals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image, preprocess_mask
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.controlnet import ControlNetResiduals
from .conditioners.inpaint_mask import InpaintMask
from .controlnet_part import ControlNetPart
from .outputs import StableDiffusionXLPipelineOutput
from .sdxl_controlnet_img2img import SDXL_IMAGE_CALLBACK_INPUTS
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import check_denoising_fractions, check_strength, cut_at_denoising_end


class StableDiffusionXLControlNetInpaintPipeline(StableDiffusionXLBase):
    """``pipe(prompt, image=init_image, mask_image=mask, control_image=edges)`` (white = repaint)."""

    parts = (*StableDiffusionXLBase.parts, "controlnet")
    part_loaders = (ControlNetPart,)
    required_components: tuple[str, ...] = (
        "text_encoder",
        "text_encoder_2",
        "unet",
        "vae_decoder",
        "vae_encoder",
    )
    _callback_tensor_inputs = (*SDXL_IMAGE_CALLBACK_INPUTS, "mask", "masked_image_latents")

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
        mask_image: ImageInput = None,
        control_image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        padding_mask_crop: int | None = None,
        strength: float = 0.9999,
        num_inference_steps: int = 50,
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
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        controlnet_conditioning_scale: float | list[float] = 1.0,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        guidance_rescale: float = 0.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        aesthetic_score: float = 6.0,
        negative_aesthetic_score: float = 2.5,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionXLPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image`` and ``mask_image`` at ``height`` x ``width`` (default: the
        image's own size); ``control_image`` as ``StableDiffusionXLControlNetPipeline``'s ``image``, resized to
        that size; ``strength`` in (0, 1]; ``denoising_start`` / ``denoising_end`` in [0, 1]."""
        check_strength(strength, zero=False)
        check_denoising_fractions(denoising_start, denoising_end)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        init_image = preprocess_image(image, height, width, self.vae_scale_factor)
        size = init_image.shape[2], init_image.shape[3]
        self.check_size(*size)
        control = ControlNetResiduals.from_arguments(
            self.controlnet,
            control_image,
            (controlnet_conditioning_scale, control_guidance_start, control_guidance_end, guess_mode),
            size,
            self.vae_scale_factor,
        )
        mask = InpaintMask(
            init_image,
            preprocess_mask(mask_image, *size, self.vae_scale_factor),
            strength=strength,
            latents=latents,
            add_noise=denoising_start is None,
        )
        starts = denoising_start is not None and 0 < denoising_start < 1
        call = self.open_call(
            size,
            [mask, self.image_added_conditions(size), control],
            strength=strength,
            denoising=(denoising_start if starts else None, None),
        )
        # diffusers cuts at denoising_end after the ControlNets' guidance windows span every timestep
        timesteps = call.timesteps
        call.timesteps = cut_at_denoising_end(self.scheduler, timesteps, denoising_end)
        if len(call.timesteps) < len(timesteps):
            call.num_inference_steps = len(call.timesteps)
            mask.cut_to(call.timesteps)
        return self.generate(call)
