"""``StableDiffusionControlNetPipeline``: text-to-image guided by control images (edges, pose, depth...), as
diffusers runs it, for bundles built with ``build-engine --controlnet``.

Each ControlNet is its own engine; every step runs the ControlNets on the step's latents and the control
images, scales and sums their residuals (``control.ControlStep``) and hands them to the UNet, whose graph
takes them as inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.components import Component, ControlNet, MultiControlNetModel
from sdrt.runtime.errors import BundleError
from sdrt.runtime.images import ImageInput
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .control import (
    ControlSettings,
    ControlStep,
    control_settings,
    controlnet_keep,
    controlnet_list,
    prepare_control_images,
)
from .guided import GuidedCall
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase
from .timesteps import retrieve_timesteps


class ControlNetMixin:
    """Loading and holding the bundle's ControlNets as diffusers' ``pipe.controlnet``."""

    bundle: Bundle

    @classmethod
    def components_to_load(cls, bundle: Bundle) -> tuple[str, ...]:
        if not bundle.manifest.controlnets:
            raise BundleError(
                f"{bundle.path} has no ControlNet; build one with build-engine MODEL -o {bundle.path} "
                "--controlnet CONTROLNET_DIR"
            )
        return super().components_to_load(bundle) + tuple(bundle.manifest.controlnets)  # type: ignore[misc]

    @classmethod
    def parts_from_engines(cls, engines: dict[str, Component]) -> dict[str, Any]:
        nets = [e for e in engines.values() if isinstance(e, ControlNet)]
        return {"controlnet": nets[0] if len(nets) == 1 else MultiControlNetModel(nets)}

    def _set_controlnet(self, controlnet: Any) -> None:
        if controlnet is None:
            raise BundleError(
                f"{type(self).__name__} needs `controlnet`; load it with {type(self).__name__}.from_pretrained("
                "bundle) from a bundle built with build-engine --controlnet"
            )
        if isinstance(controlnet, list | tuple):
            controlnet = controlnet[0] if len(controlnet) == 1 else MultiControlNetModel(controlnet)
        self.controlnet = controlnet

    def control_settings(
        self, image: ImageInput, scale: Any, start: Any, end: Any, guess_mode: bool
    ) -> tuple[ControlSettings, bool]:
        """The call's control arguments, one entry per ControlNet, and its guess mode (diffusers': asked,
        or the first ControlNet's ``global_pool_conditions``)."""
        nets = controlnet_list(self.controlnet)
        control = control_settings(len(nets), image, scale, start, end)
        return control, bool(guess_mode) or nets[0].global_pool_conditions

    def start_call(
        self,
        control: ControlSettings,
        guess_mode: bool,
        embeds: Any,
        guidance: Any,
        *,
        size: tuple[int | None, int | None],
        num_images_per_prompt: int,
        tensor_inputs: Sequence[str],
        generator: Any,
        schedule: tuple[int, Any, Any],
        latents: Any,
        eta: float,
    ) -> tuple[GuidedCall, list[Any]]:
        """The control images at the output size (default: the first one's own) and the call over them: checks,
        noise, timesteps (``schedule``: steps, timesteps, sigmas) and latents, in diffusers' order."""
        images = prepare_control_images(
            control.images,
            *size,
            embeds.batch,
            num_images_per_prompt,
            guidance.enabled and not guess_mode,
            self.vae_scale_factor,  # type: ignore[attr-defined]
        )
        height, width = images[0].shape[2:]
        self.check_inputs(height, width, num_images_per_prompt, tensor_inputs)  # type: ignore[attr-defined]
        noise = self.noise_source(generator, embeds.batch)  # type: ignore[attr-defined]
        timesteps, steps = retrieve_timesteps(self.scheduler, *schedule)  # type: ignore[attr-defined]
        in_channels = self.unet.config.in_channels  # type: ignore[attr-defined]
        latents = self.prepare_latents(embeds.batch, in_channels, height, width, noise, latents)  # type: ignore[attr-defined]
        return GuidedCall(latents, timesteps, steps, embeds, guidance, noise, eta), images

    def add_control(
        self, call: GuidedCall, control: ControlSettings, images: list[Any], guess_mode: bool
    ) -> GuidedCall:
        """``call`` with the ControlNets' residuals computed each step (``ControlStep``)."""
        keep = controlnet_keep(len(call.timesteps), control.starts, control.ends)
        pixels = [self.to_xp(i) for i in images]  # type: ignore[attr-defined]
        nets = controlnet_list(self.controlnet)
        call.step_inputs = ControlStep(
            nets,
            pixels,
            control.scales,
            keep,
            guess_mode,
            call.guidance.enabled,
            self.scheduler,  # type: ignore[attr-defined]
            call.unet_inputs,  # SDXL's text_embeds and time_ids, which its ControlNets take too
        )
        return call

    @property
    def engines(self) -> dict[str, Component]:
        found = dict(super().engines)  # type: ignore[misc]
        return found | {net.name: net for net in controlnet_list(getattr(self, "controlnet", None) or [])}


class StableDiffusionControlNetPipeline(ControlNetMixin, StableDiffusionBase):
    """``pipe(prompt, image=control_image, controlnet_conditioning_scale=1.0)``; with several ControlNets,
    ``image`` and (optionally) the scales and guidance windows are lists, one per ControlNet."""

    parts = (*StableDiffusionBase.parts, "controlnet")

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
        self._set_controlnet(controlnet)

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
        control, guess_mode = self.control_settings(
            image, controlnet_conditioning_scale, control_guidance_start, control_guidance_end, guess_mode
        )
        guidance = self.guidance(guidance_scale)
        embeds = self.prompt_encoder.encode(
            prompt,
            num_images_per_prompt,
            guidance.enabled,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
        )
        call, images = self.start_call(
            control,
            guess_mode,
            embeds,
            guidance,
            size=(height, width),
            num_images_per_prompt=num_images_per_prompt,
            tensor_inputs=callback_on_step_end_tensor_inputs,
            generator=generator,
            schedule=(num_inference_steps, timesteps, sigmas),
            latents=latents,
            eta=eta,
        )
        return self.generate(
            self.add_control(call, control, images, guess_mode),
            output_type=output_type,
            return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
