"""``StableDiffusionControlNetImg2ImgPipeline``: image-to-image guided by control images, as diffusers runs it:
the init image noised to the first timestep ``strength`` keeps (``image_to_image``'s pieces), and every step
the ControlNets' residuals (``control.ControlStep``)."""

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
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength


class StableDiffusionControlNetImg2ImgPipeline(StableDiffusionBase):
    """``pipe(prompt, image=init_image, control_image=edges, strength=0.8)``."""

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
        control_image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        strength: float = 0.8,
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
        controlnet_conditioning_scale: float | list[float] = 0.8,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: the picture to start from, at ``height`` x ``width``
        (default: its own size); ``control_image``: as ``StableDiffusionControlNetPipeline``'s ``image``,
        resized to the picture's size. ``latents``, when given, are the starting latents as they are."""
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
        return self.generate(
            self.open_call(size, [ImageLatents(pixels, latents), control], strength=strength)
        )
