"""``AdapterFeatures``: the T2I-Adapters' feature maps of the call's conditioning images, computed once before the
loop and handed to the UNet as ``down_intrablock_additional_residuals`` for the first
``int(num_inference_steps * adapter_conditioning_factor)`` steps, as diffusers' adapter pipelines do."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from sdrt.runtime.components import MultiAdapter, T2IAdapter
from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.images import ImageInput, _as_list, _pil_to_nchw, _to_nchw

from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


def adapter_list(adapter: Any) -> list[T2IAdapter]:
    """The adapters of ``pipe.adapter``: one component, a ``MultiAdapter`` or a list."""
    if isinstance(adapter, MultiAdapter):
        return list(adapter.adapters)
    if isinstance(adapter, list | tuple):
        return list(adapter)
    return [adapter]


def default_adapter_size(image: Any, height: int | None, width: int | None, factor: int) -> tuple[int, int]:
    """diffusers' ``_default_height_width``: the (first) image's size floored to the adapter's downscale factor;
    a size given must be a multiple of it (the adapter's pixel unshuffle takes whole blocks)."""
    while isinstance(image, list | tuple) and image:
        image = image[0]
    for name, given in (("height", height), ("width", width)):
        if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given % factor):
            raise InputError(
                f"`{name}` {given!r} must be a multiple of the adapter's downscale factor {factor}"
            )
    if height is not None and width is not None:
        return height, width
    pixels = _as_list(image, "image")[0]
    if isinstance(pixels, Image.Image):
        own = (pixels.height, pixels.width)
    else:
        own = tuple(_to_nchw([pixels], "image", mask=False)[0].shape[2:])
    height = height if height is not None else own[0] // factor * factor
    width = width if width is not None else own[1] // factor * factor
    if height < 1 or width < 1:
        raise InputError(
            f"the adapter image is {own[1]}x{own[0]} pixels, smaller than the adapter's {factor}"
        )
    return height, width


def preprocess_adapter_image(image: ImageInput, height: int, width: int, channels: int) -> np.ndarray:
    """diffusers' ``_preprocess_adapter_image``: PIL images resized (Lanczos) to the call's size, in [0, 1], their
    own channels (L: 1, RGB: 3); arrays and tensors as they are, which must then have the call's size."""
    images = _as_list(image, "image")
    if isinstance(images[0], Image.Image):
        pixels = _pil_to_nchw(images, height, width, images[0].mode)
    else:
        pixels, _ = _to_nchw(images, "image", mask=False)
        if tuple(pixels.shape[2:]) != (height, width):
            raise InputError(
                f"the adapter `image` is {pixels.shape[3]}x{pixels.shape[2]} (width x height) but the call makes "
                f"{width}x{height} images: pass arrays of that size, a PIL image (resized), or height and width"
            )
    if pixels.shape[1] != channels:
        kind = (
            "grayscale: convert a PIL image with .convert('L')" if channels == 1 else "RGB: .convert('RGB')"
        )
        raise InputError(
            f"the adapter `image` has {pixels.shape[1]} channel(s) (shape {tuple(pixels.shape)}) but the adapter takes "
            f"{channels} ({kind})"
        )
    return pixels


def _scales(value: Any, count: int) -> list[float]:
    values = list(value) if isinstance(value, list | tuple) else [value] * count
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(float(v)):
            raise InputTypeError(
                f"`adapter_conditioning_scale` must be a number or a list of numbers, got {value!r}"
            )
    if len(values) != count:
        raise InputError(
            f"`adapter_conditioning_scale` has {len(values)} values for {count} adapters; pass one each"
        )
    return [float(v) for v in values]


class AdapterFeatures(Conditioner):
    """Made by :meth:`from_arguments` from an adapter pipeline's call; ``size`` is the call's (height, width)."""

    def __init__(self, adapter: Any, images: list[np.ndarray], scales: list[float], factor: float) -> None:
        self.adapter, self.images, self.scales, self.factor = adapter, images, scales, factor
        self.features: list[Any] = []
        self.call: GuidedCall | None = None
        self.step = 0

    @classmethod
    def from_arguments(
        cls,
        adapter: Any,
        image: ImageInput,
        size: tuple[int | None, int | None],
        scale: Any,
        factor: Any = 1.0,
    ) -> AdapterFeatures:
        """``image``: one adapter's image(s), or (several adapters) a list of one image each; ``scale``:
        ``adapter_conditioning_scale``; ``factor``: ``adapter_conditioning_factor``."""
        adapters = adapter_list(adapter)
        if image is None:
            raise InputError("`image` (the adapter's conditioning image) is required")
        if len(adapters) > 1 and (not isinstance(image, list | tuple) or len(image) != len(adapters)):
            raise InputError(
                f"this pipeline has {len(adapters)} adapters: pass `image` as a list of one image each"
            )
        if (
            isinstance(factor, bool)
            or not isinstance(factor, numbers.Real)
            or not 0.0 <= float(factor) <= 1.0
        ):
            raise InputError(f"`adapter_conditioning_factor` must be a number in [0, 1], got {factor!r}")
        height, width = default_adapter_size(image, *size, adapters[0].downscale_factor)
        per_adapter = list(image) if len(adapters) > 1 else [image]
        images = [
            preprocess_adapter_image(i, height, width, a.in_channels) for i, a in zip(per_adapter, adapters)
        ]
        return cls(adapter, images, _scales(scale, len(adapters)), float(factor))

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.images[0].shape[2:]
        return int(height), int(width)

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        """The features, scaled (several adapters: weighted and summed), repeated to the batch, doubled for
        guidance."""
        images = [pipe.to_xp(i) for i in self.images]
        if isinstance(self.adapter, MultiAdapter):
            features = self.adapter(images, self.scales)
        else:
            features = [f * np.float32(self.scales[0]) for f in adapter_list(self.adapter)[0](images[0])]
        xp, per_prompt = pipe.xp, call.num_images_per_prompt
        given, prompts = features[0].shape[0], call.embeds.batch // per_prompt
        if given not in (1, prompts):
            raise InputError(
                f"{given} adapter images for {prompts} prompts: pass one image, or one per prompt"
            )
        reps = (
            call.embeds.batch if given == 1 else per_prompt
        )  # diffusers' v.repeat(num_images_per_prompt, 1, 1, 1)
        features = [xp.tile(f, (reps, 1, 1, 1)) for f in features]
        self.features = [xp.concatenate([f, f]) for f in features] if call.guidance.enabled else features
        self.call, self.step = call, 0

    def step_inputs(self, state: dict[str, Any], t: Any, model_input: Any) -> dict[str, Any]:
        step, self.step = self.step, self.step + 1
        steps = self.call.num_inference_steps if self.call is not None else 0
        if step < int(steps * self.factor):
            return {"down_intrablock_additional_residuals": self.features}
        return {}  # the UNet adds zeros: diffusers' None
