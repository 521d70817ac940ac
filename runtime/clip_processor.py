"""``CLIPImageProcessor``: transformers' CLIP image processor (its PIL backend) in NumPy and Pillow.

What the image encoders of image variation, IP-Adapter, Paint-by-Example and the safety checker read.
The steps its ``preprocessor_config.json`` turns on, in its order: resize with Pillow (bicubic by default)
so the shortest edge is ``size["shortest_edge"]`` (the other side truncated, as transformers does), or to
``{"height", "width"}``; centre-crop to ``crop_size``; rescale (1/255); normalise by ``image_mean`` and
``image_std``. Images reach the resize as 8-bit RGB: PIL images as they are, arrays in [0, 1] rounded to
0..255.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import BundleError, InputError

CONFIG_NAME = "preprocessor_config.json"
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _crop_size(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if isinstance(size, Mapping) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    raise BundleError(
        f"CLIP processor: `crop_size` {size!r} is neither an int nor {{'height': H, 'width': W}}"
    )


def resize_output_size(height: int, width: int, size: Any) -> tuple[int, int]:
    """The (height, width) an image is resized to: the shortest edge to ``size`` (or an int), else fixed."""
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if isinstance(size, Mapping) and "shortest_edge" in size:
        edge = int(size["shortest_edge"])
        short, long = (height, width) if height <= width else (width, height)
        new_long = int(edge * long / short)
        return (edge, new_long) if height <= width else (new_long, edge)
    if isinstance(size, Mapping) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    raise BundleError(f"CLIP processor: `size` {size!r} names neither `shortest_edge` nor height and width")


def centre_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """A CHW array cut to ``height`` x ``width`` about its centre; a smaller one zero-padded first, as
    transformers pads (the extra row or column of an odd pad on the top and left)."""
    _, rows, columns = pixels.shape
    top, left = (rows - height) // 2, (columns - width) // 2
    if top >= 0 and left >= 0 and top + height <= rows and left + width <= columns:
        return pixels[:, top : top + height, left : left + width]
    new_rows, new_columns = max(rows, height), max(columns, width)
    top_pad, left_pad = -(-(new_rows - rows) // 2), -(-(new_columns - columns) // 2)
    padded = np.zeros((pixels.shape[0], new_rows, new_columns), pixels.dtype)
    padded[:, top_pad : top_pad + rows, left_pad : left_pad + columns] = pixels
    top, left = top + top_pad, left + left_pad
    return padded[:, max(0, top) : min(new_rows, top + height), max(0, left) : min(new_columns, left + width)]


def as_pil(image: Any) -> Image.Image:
    """A PIL image, or an HWC / CHW array in [0, 1], as an 8-bit RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise InputError(
            f"the image encoder's image has shape {array.shape}; pass a PIL image or an H x W x 3 array in [0, 1]"
        )
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")


class CLIPImageProcessor:
    """``processor(images)`` -> float32 ``pixel_values`` N x 3 x H x W, as transformers' processor gives."""

    def __init__(self, **config: Any) -> None:
        self.config = dict(config)
        self.do_resize = bool(config.get("do_resize", True))
        self.size = config.get("size", {"shortest_edge": 224})
        self.resample = int(config.get("resample", Image.Resampling.BICUBIC))
        self.do_center_crop = bool(config.get("do_center_crop", True))
        self.crop_size = _crop_size(config.get("crop_size", {"height": 224, "width": 224}))
        self.do_rescale = bool(config.get("do_rescale", True))
        self.rescale_factor = float(config.get("rescale_factor", 1 / 255))
        self.do_normalize = bool(config.get("do_normalize", True))
        self.image_mean = np.asarray(config.get("image_mean", OPENAI_CLIP_MEAN), np.float64)
        self.image_std = np.asarray(config.get("image_std", OPENAI_CLIP_STD), np.float64)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> CLIPImageProcessor:
        """The processor a ``preprocessor_config.json`` in ``folder`` describes."""
        path = Path(folder) / CONFIG_NAME
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise BundleError(
                f"cannot read the CLIP image processor's settings {path}: {error}; rebuild the bundle"
            ) from error
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.config)

    def __call__(self, images: Any) -> np.ndarray:
        if isinstance(images, Image.Image) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        if not isinstance(images, Sequence) or not images:
            raise InputError(
                "the image encoder got no image; pass a PIL image, a list of them, or arrays in [0, 1]"
            )
        return np.stack([self.preprocess_one(as_pil(image)) for image in images]).astype(np.float32)

    def preprocess_one(self, image: Image.Image) -> np.ndarray:
        """One 8-bit RGB PIL image -> a float CHW array."""
        if self.do_resize:
            height, width = resize_output_size(image.height, image.width, self.size)
            image = image.resize((width, height), resample=self.resample)
        pixels = np.asarray(image).astype(np.float64).transpose(2, 0, 1)
        if self.do_center_crop:
            pixels = centre_crop(pixels, *self.crop_size)
        if self.do_rescale:
            pixels = (pixels * self.rescale_factor).astype(np.float32).astype(np.float64)
        if self.do_normalize:
            pixels = (pixels - self.image_mean[:, None, None]) / self.image_std[:, None, None]
        return pixels.astype(np.float32)
