"""``StableDiffusionControlNetInpaintPipeline``: repaint the white part of a mask, guided by control images,
as diffusers runs it on an SD 1.x / 2.x bundle (a 4-channel UNet: after every step the unmasked part is the
image's latents noised to the next timestep, ``inpaint``'s pieces), with the ControlNets' residuals each step.
"""

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
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength


class StableDiffusionControlNetInpaintPipeline(StableDiffusionBase):
    """``pipe(prompt, image=init_image, mask_image=mask, control_image=edges)`` (white = repaint)."""

    parts = (*StableDiffusionBase.parts, "controlnet")
    part_loaders = (ControlNetPart,)
    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        controlnet: Any = None,
        scheduler: Any = None,
        safety_checker: Any = None,
        feature_extractor: Any = None,
        image_encoder: Any = None,
        requires_safety_checker: bool = True,
    ) -> None:
        """diffusers' constructor (``controlnet``: a ControlNet engine, a list or a ``MultiControlNetModel``)."""
        super().__init__(
            vae,
            text_encoder,
            tokenizer,
            unet,
            scheduler,
            safety_checker,
            feature_extractor,
            image_encoder,
            requires_safety_checker,
        )
        self.controlnet = ControlNetPart.accept(type(self).__name__, controlnet)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        mask_image: ImageInput = None,
        control_image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        padding_mask_crop: int | None = None,
        strength: float = 1.0,
        num_inference_steps: int = 50,
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
        controlnet_conditioning_scale: float | list[float] = 0.5,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image`` and ``mask_image`` at ``height`` x ``width`` (default:
        the image's own size); ``control_image`` as ``StableDiffusionControlNetPipeline``'s ``image``, resized
        to that size."""
        check_strength(strength)
        if image is None or mask_image is None:
            raise InputError("inpainting needs both `image` and `mask_image`")
        init_image = preprocess_image(image, height, width, self.vae_scale_factor)
        size = init_image.shape[2], init_image.shape[3]
        mask = preprocess_mask(mask_image, *size, self.vae_scale_factor)
        self.check_size(*size)
        control = ControlNetResiduals.from_arguments(
            self.controlnet,
            control_image,
            (controlnet_conditioning_scale, control_guidance_start, control_guidance_end, guess_mode),
            size,
            self.vae_scale_factor,
        )
        inpaint = InpaintMask(init_image, mask, strength=strength, latents=latents)
        return self.generate(self.open_call(size, [inpaint, control], strength=strength))
