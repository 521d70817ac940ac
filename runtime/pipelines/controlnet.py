"""``StableDiffusionControlNetPipeline``: text-to-image guided by control images (edges, pose, depth...), as
diffusers runs it, for bundles built with ``build-engine --controlnet``.

Each ControlNet is its own engine; every step runs the ControlNets on the step's latents and the control
images, scales and sums their residuals (``control.ControlStep``) and hands them to the UNet, whose graph
takes them as inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.images import ImageInput
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.controlnet import ControlNetResiduals
from .controlnet_part import ControlNetPart
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase


class StableDiffusionControlNetPipeline(StableDiffusionBase):
    """``pipe(prompt, image=control_image, controlnet_conditioning_scale=1.0)``; with several ControlNets,
    ``image`` and (optionally) the scales and guidance windows are lists, one per ControlNet."""

    parts = (*StableDiffusionBase.parts, "controlnet")
    part_loaders = (ControlNetPart,)

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
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=safety_checker,
            feature_extractor=feature_extractor,
            image_encoder=image_encoder,
            requires_safety_checker=requires_safety_checker,
        )
        self.controlnet = ControlNetPart.accept(type(self).__name__, controlnet)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
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
        controlnet_conditioning_scale: float | list[float] = 1.0,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: the control image (PIL, NumPy HWC in [0, 1] or uint8,
        torch CHW, a path), or a list (a batch; with several ControlNets, one per ControlNet), resized to
        ``height`` x ``width`` (default: the first control image's size)."""
        control = ControlNetResiduals.from_arguments(
            self.controlnet,
            image,
            (controlnet_conditioning_scale, control_guidance_start, control_guidance_end, guess_mode),
            (height, width),
            self.vae_scale_factor,
        )
        return self.generate(self.open_call(control.size, [control]))
