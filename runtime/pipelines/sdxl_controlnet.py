"""``StableDiffusionXLControlNetPipeline``: SDXL text-to-image guided by control images, as diffusers runs it,
for SDXL bundles built with ``build-engine --controlnet``.

The SDXL ControlNets take the UNet's added conditions (``text_embeds``, ``time_ids``) besides the latents,
the prompt embeddings and the control image; each is its own engine and every step's residuals are made
by ``control.ControlStep``, as in ``StableDiffusionControlNetPipeline``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.images import ImageInput
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.controlnet import ControlNetResiduals
from .controlnet_part import ControlNetPart
from .outputs import StableDiffusionXLPipelineOutput
from .stable_diffusion_xl import StableDiffusionXLBase
from .timesteps import cut_at_denoising_end


class StableDiffusionXLControlNetPipeline(StableDiffusionXLBase):
    """``pipe(prompt, image=control_image, controlnet_conditioning_scale=1.0)``; with several ControlNets,
    ``image`` and (optionally) the scales and guidance windows are lists, one per ControlNet."""

    parts = (*StableDiffusionXLBase.parts, "controlnet")
    part_loaders = (ControlNetPart,)

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
        force_zeros_for_empty_prompt: bool | None = None,
        add_watermarker: bool | None = None,
        feature_extractor: Any = None,
        image_encoder: Any = None,
    ) -> None:
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
        )
        self.controlnet = ControlNetPart.accept(type(self).__name__, controlnet)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image: ImageInput = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
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
        controlnet_conditioning_scale: float | list[float] = 1.0,
        guess_mode: bool = False,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        negative_original_size: tuple[int, int] | None = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: tuple[int, int] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> StableDiffusionXLPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: the control image (PIL, NumPy HWC in [0, 1] or uint8,
        torch CHW, a path), or a list (a batch; with several ControlNets, one per ControlNet), resized to
        ``height`` x ``width`` (default: the first control image's size, also the default ``original_size``)."""
        control = ControlNetResiduals.from_arguments(
            self.controlnet,
            image,
            (controlnet_conditioning_scale, control_guidance_start, control_guidance_end, guess_mode),
            (height, width),
            self.vae_scale_factor,
        )
        # the ControlNets take the added conditions too; their guidance windows span every timestep
        call = self.open_call(control.size, [self.added_conditions(control.size), control])
        timesteps = call.timesteps
        call.timesteps = cut_at_denoising_end(self.scheduler, timesteps, denoising_end)
        if len(call.timesteps) < len(timesteps):
            call.num_inference_steps = len(call.timesteps)
        return self.generate(call)
