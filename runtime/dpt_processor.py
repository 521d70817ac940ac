"""``DPTImageProcessor``: transformers' DPT image processor (its PIL backend) in NumPy and Pillow.

The steps its ``preprocessor_config.json`` turns on, in its order: resize with Pillow (bicubic by
default) to ``size``, or, with ``keep_aspect_ratio``, by the one factor closest to 1 that fits a side,
each side rounded to a multiple of ``ensure_multiple_of``; rescale (1/255); normalise by ``image_mean``
and ``image_std``; centre-pad to ``size_divisor`` (``do_pad``). Images reach the resize as 8-bit RGB:
PIL images as they are, arrays in [0, 1] rounded to 0..255 (transformers' array path differs there).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import BundleError, InputError

CONFIG_NAME = "preprocessor_config.json"
IMAGENET_STANDARD = [0.5, 0.5, 0.5]


def _size(size: Any) -> tuple[int, int]:
    """(height, width) from transformers' ``size``: an int (square) or {"height", "width"}."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, Mapping) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    raise BundleError(f"DPT processor: `size` {size!r} is neither an int nor {{'height': H, 'width': W}}")


def constrain_to_multiple_of(value: float, multiple: int) -> int:
    """transformers' rounding of a resized side to a multiple (round half to even, as Python's ``round``)."""
    x = round(value / multiple) * multiple
    return math.ceil(value / multiple) * multiple if x < 0 else int(x)


def resize_output_size(
    height: int, width: int, size: tuple[int, int], keep_aspect_ratio: bool, multiple: int
) -> tuple[int, int]:
    """The size an image of ``height`` x ``width`` is resized to (transformers' ``get_resize_output_image_size``)."""
    scale_height, scale_width = size[0] / height, size[1] / width
    if keep_aspect_ratio:  # scale as little as possible
        if abs(1 - scale_width) < abs(1 - scale_height):
            scale_height = scale_width
        else:
            scale_width = scale_height
    return (
        constrain_to_multiple_of(scale_height * height, multiple),
        constrain_to_multiple_of(scale_width * width, multiple),
    )


class DPTImageProcessor:
    """``processor(images)`` -> float32 ``pixel_values`` N x 3 x H x W, as transformers' processor gives."""

    def __init__(self, **config: Any) -> None:
        self.config = dict(config)
        self.do_resize = bool(config.get("do_resize", True))
        self.size = _size(config.get("size", {"height": 384, "width": 384}))
        self.resample = int(config.get("resample", Image.Resampling.BICUBIC))
        self.keep_aspect_ratio = bool(config.get("keep_aspect_ratio", False))
        self.ensure_multiple_of = int(config.get("ensure_multiple_of", 1) or 1)
        self.do_rescale = bool(config.get("do_rescale", True))
        self.rescale_factor = float(config.get("rescale_factor", 1 / 255))
        self.do_normalize = bool(config.get("do_normalize", True))
        self.image_mean = np.asarray(config.get("image_mean", IMAGENET_STANDARD), np.float64)
        self.image_std = np.asarray(config.get("image_std", IMAGENET_STANDARD), np.float64)
        self.do_pad = bool(config.get("do_pad", False))
        self.size_divisor = config.get("size_divisor")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> DPTImageProcessor:
        """The processor a ``preprocessor_config.json`` in ``folder`` describes."""
        path = Path(folder) / CONFIG_NAME
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise BundleError(
                f"cannot read the DPT processor's settings {path}: {error}; rebuild the bundle"
            ) from error
        return cls(**config)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) of the ``pixel_values`` for an image of that size (before any padding)."""
        if not self.do_resize:
            return height, width
        return resize_output_size(height, width, self.size, self.keep_aspect_ratio, self.ensure_multiple_of)

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([self.preprocess_one(image) for image in images]).astype(np.float32)

    def preprocess_one(self, image: Image.Image) -> np.ndarray:
        """One 8-bit RGB PIL image -> a float CHW array."""
        image = image.convert("RGB")
        if self.do_resize:
            height, width = self.output_size(image.height, image.width)
            if height < 1 or width < 1:
                raise InputError(f"the DPT processor resizes a {image.width}x{image.height} image to nothing")
            image = image.resize((width, height), resample=self.resample)
        pixels = np.asarray(image).astype(np.float64).transpose(2, 0, 1)
        if self.do_rescale:
            pixels = (pixels * self.rescale_factor).astype(np.float32).astype(np.float64)
        if self.do_normalize:
            pixels = (pixels - self.image_mean[:, None, None]) / self.image_std[:, None, None]
            pixels = pixels.astype(np.float32)
        if self.do_pad and self.size_divisor:
            pixels = _centre_pad(pixels, int(self.size_divisor))
        return pixels


def _centre_pad(pixels: np.ndarray, divisor: int) -> np.ndarray:
    pads = []
    for size in pixels.shape[1:]:
        extra = math.ceil(size / divisor) * divisor - size
        pads.append((extra // 2, extra - extra // 2))
    return np.pad(pixels, ((0, 0), *pads))
