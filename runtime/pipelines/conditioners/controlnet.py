"""``ControlNetResiduals``: every step, the ControlNets' residuals for the UNet (``control.ControlStep``), from
control images read as diffusers reads them (one image, scale and guidance window per ControlNet)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdrt.runtime.components import ControlNet
from sdrt.runtime.images import ImageInput

from ..control import (
    ControlSettings,
    ControlStep,
    batch_control_images,
    control_settings,
    controlnet_keep,
    controlnet_list,
    preprocess_control_images,
)
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class ControlNetResiduals(Conditioner):
    """Made by :meth:`from_arguments` from a ControlNet pipeline's call; ``size`` is the control images'
    (height, width), the call's size where the pipeline has no other image to take it from."""

    def __init__(
        self, nets: list[ControlNet], control: ControlSettings, images: list[Any], guess_mode: bool
    ) -> None:
        self.nets, self.control, self.images, self.guess_mode = nets, control, images, guess_mode
        self.step: ControlStep | None = None

    @classmethod
    def from_arguments(
        cls,
        controlnet: Any,
        image: ImageInput,
        arguments: tuple[Any, Any, Any, bool],
        size: tuple[int | None, int | None],
        scale_factor: int,
    ) -> ControlNetResiduals:
        """``arguments``: diffusers' ``controlnet_conditioning_scale``, ``control_guidance_start`` and
        ``_end``, ``guess_mode`` (asked, or the first ControlNet's ``global_pool_conditions``); the images
        resized to ``size`` (height, width; None: the first image's own)."""
        scale, start, end, guess_mode = arguments
        nets = controlnet_list(controlnet)
        control = control_settings(len(nets), image, scale, start, end)
        guess_mode = bool(guess_mode) or nets[0].global_pool_conditions
        return cls(nets, control, preprocess_control_images(control.images, *size, scale_factor), guess_mode)

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.images[0].shape[2:]
        return int(height), int(width)

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        """The images repeated to the batch, the guidance windows over every timestep the call has now, and
        the UNet's added inputs (SDXL's ``text_embeds``, ``time_ids``), which the ControlNets take too."""
        doubled = call.guidance.enabled and not self.guess_mode
        images = batch_control_images(self.images, call.embeds.batch, call.num_images_per_prompt, doubled)
        keep = controlnet_keep(len(call.timesteps), self.control.starts, self.control.ends)
        pixels = [pipe.to_xp(i) for i in images]
        self.step = ControlStep(
            self.nets,
            pixels,
            self.control.scales,
            keep,
            self.guess_mode,
            call.guidance.enabled,
            pipe.scheduler,
            call.unet_inputs,
        )

    def step_inputs(self, state: dict[str, Any], t: Any, model_input: Any) -> dict[str, Any]:
        return {} if self.step is None else self.step(state, t, model_input)
