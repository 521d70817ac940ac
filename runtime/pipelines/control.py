"""What the ControlNet pipelines share: their arguments read as diffusers reads them (one control image,
scale and guidance window per ControlNet), the control images prepared as ``prepare_image`` does, and
the per-step residuals (``ControlStep``: diffusers' ``controlnet_keep``, guess mode, several ControlNets).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdrt.runtime.components import ControlNet, MultiControlNetModel
from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.images import ImageInput, preprocess_control_image


def controlnet_list(controlnet: Any) -> list[ControlNet]:
    """The ControlNets of ``pipe.controlnet``: one component, a ``MultiControlNetModel`` or a list."""
    if isinstance(controlnet, MultiControlNetModel):
        return list(controlnet.nets)
    if isinstance(controlnet, list | tuple):
        return list(controlnet)
    return [controlnet]


@dataclass(frozen=True)
class ControlSettings:
    """One entry per ControlNet: its image(s), conditioning scale and guidance window."""

    images: list[Any]
    scales: list[float]
    starts: list[float]
    ends: list[float]


def _numbers(name: str, value: Any, count: int) -> list[float]:
    values = list(value) if isinstance(value, list | tuple) else [value] * count
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(float(v)):
            raise InputTypeError(f"`{name}` must be a number or a list of numbers, got {value!r}")
    if len(values) != count:
        raise InputError(
            f"`{name}` has {len(values)} values for {count} ControlNet{'s' if count > 1 else ''}; pass one "
            "number, or one per ControlNet"
        )
    return [float(v) for v in values]


def control_settings(count: int, image: ImageInput, scale: Any, start: Any, end: Any) -> ControlSettings:
    """diffusers' reading of the arguments for ``count`` ControlNets, with clear errors."""
    if image is None:
        raise InputError("`image` (the control image) is required")
    if count == 1:
        images = [image]
    elif not isinstance(image, list | tuple):
        raise InputError(
            f"this bundle has {count} ControlNets: pass `image` as a list of {count} control images, one each"
        )
    elif any(isinstance(i, list | tuple) for i in image):  # [[a1, b1], [a2, b2]]: per prompt, transposed
        images = [list(t) for t in zip(*image)]
    else:
        images = list(image)
    if len(images) != count:
        raise InputError(f"{len(images)} control images for {count} ControlNets; pass one per ControlNet")
    starts = _numbers("control_guidance_start", start, count)
    ends = _numbers("control_guidance_end", end, count)
    for s, e in zip(starts, ends):
        if not 0.0 <= s < e <= 1.0:
            raise InputError(f"control guidance start {s} and end {e} must satisfy 0 <= start < end <= 1")
    return ControlSettings(images, _numbers("controlnet_conditioning_scale", scale, count), starts, ends)


def controlnet_keep(steps: int, starts: Sequence[float], ends: Sequence[float]) -> list[list[float]]:
    """Per timestep, per ControlNet: 1.0 inside its guidance window, else 0.0 (diffusers' rule)."""
    return [
        [1.0 - float(i / steps < s or (i + 1) / steps > e) for s, e in zip(starts, ends)]
        for i in range(steps)
    ]


def preprocess_control_images(
    images: list[Any], height: int | None, width: int | None, scale_factor: int
) -> list[np.ndarray]:
    """Each ControlNet's images in [0, 1] at the call's size (default: the first image's own size)."""
    prepared = []
    for image in images:
        pixels = preprocess_control_image(image, height, width, scale_factor)
        height, width = pixels.shape[2:]
        prepared.append(pixels)
    return prepared


def batch_control_images(
    images: list[np.ndarray], batch: int, num_images_per_prompt: int, doubled: bool
) -> list[np.ndarray]:
    """Each ControlNet's images repeated to the batch, doubled for guidance."""
    batched = []
    for pixels in images:
        prompts = batch // num_images_per_prompt
        if len(pixels) not in (1, prompts):
            raise InputError(
                f"{len(pixels)} control images for {prompts} prompts: pass one image, or one per prompt"
            )
        pixels = np.repeat(pixels, batch if len(pixels) == 1 else num_images_per_prompt, axis=0)
        batched.append(np.concatenate([pixels, pixels]) if doubled else pixels)
    return batched


class ControlStep:
    """The UNet's residual inputs at each step (``GuidedCall.step_inputs``), as diffusers' loop makes them."""

    def __init__(
        self,
        nets: list[ControlNet],
        images: list[Any],
        scales: list[float],
        keep: list[list[float]],
        guess_mode: bool,
        guided: bool,
        scheduler: Any,
        added: Mapping[str, str] | None = None,
    ) -> None:
        """``added``: the ControlNets' ``added_cond_kwargs`` (SDXL's ``text_embeds``, ``time_ids``) -> the
        state entries that hold them, as ``GuidedCall.unet_inputs``."""
        self.nets, self.images, self.scales, self.keep = nets, images, scales, keep
        self.guess_mode, self.guided, self.scheduler = guess_mode, guided, scheduler
        self.added = dict(added or {})
        self.step = 0

    def __call__(self, state: dict[str, Any], t: Any, model_input: Any) -> dict[str, Any]:
        keep, self.step = self.keep[self.step], self.step + 1
        embeds = state["prompt_embeds"]
        added = {name: state[key] for name, key in self.added.items()}
        if (
            self.guess_mode and self.guided
        ):  # the ControlNets see the second half only, as diffusers' chunk(2)[1]
            model_input = self.scheduler.scale_model_input(state["latents"], t)
            embeds = embeds[len(embeds) // 2 :]
            added = {name: value[len(value) // 2 :] for name, value in added.items()}
        down_sum, mid_sum = None, None
        for net, image, scale, kept in zip(self.nets, self.images, self.scales, keep):
            if scale * kept == 0.0:  # diffusers multiplies the residuals by 0: the same as leaving them out
                continue
            down, mid = net(model_input, t, embeds, image, scale * kept, self.guess_mode, added or None)
            if down_sum is None:
                down_sum, mid_sum = down, mid
            else:
                down_sum, mid_sum = [a + b for a, b in zip(down_sum, down)], mid_sum + mid
        if down_sum is None:
            return {}  # the UNet adds zero residuals
        if self.guess_mode and self.guided:
            xp = self.nets[0].xp
            down_sum = [xp.concatenate([xp.zeros_like(d), d]) for d in down_sum]
            mid_sum = xp.concatenate([xp.zeros_like(mid_sum), mid_sum])
        return {"down_block_additional_residuals": down_sum, "mid_block_additional_residual": mid_sum}
