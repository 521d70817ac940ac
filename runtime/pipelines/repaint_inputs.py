"""RePaint's image and mask, prepared as diffusers' ``RePaintPipeline`` prepares them (its own ``_preprocess_image``
and ``_preprocess_mask``, not the VAE image processor): PIL images floored to a multiple of 8 with Lanczos and
scaled to [-1, 1]; PIL masks in grayscale, floored to a multiple of 32 (nearest), binarized at 0.5, shaped
[batch, height, width], 1 = keep the original. Arrays and torch tensors are taken as they are (NCHW in [-1, 1]
images, masks broadcastable to them), as diffusers takes tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.images import load_image


def repaint_image(image: Any) -> np.ndarray:
    """The picture(s) to inpaint -> float32 NCHW in [-1, 1]."""
    images = image_items(image, "image")
    if isinstance(images[0], Image.Image):
        w, h = (x - x % 8 for x in images[0].size)
        arrays = [np.array(i.resize((w, h), resample=Image.Resampling.LANCZOS))[None, :] for i in images]
        pixels = np.concatenate(arrays, axis=0).astype(np.float32) / 255.0
        if pixels.ndim != 4:
            raise InputError(f"`image` must be RGB; got a {images[0].mode} image (pass image.convert('RGB'))")
        return 2.0 * pixels.transpose(0, 3, 1, 2) - 1.0
    return image_arrays(images, "image")


def repaint_mask(mask_image: Any) -> np.ndarray:
    """The mask(s) -> float32, 1 where the original is kept and 0 where RePaint generates."""
    masks = image_items(mask_image, "mask_image")
    if isinstance(masks[0], Image.Image):
        w, h = (x - x % 32 for x in masks[0].size)
        arrays = [
            np.array(m.convert("L").resize((w, h), resample=Image.Resampling.NEAREST))[None, :] for m in masks
        ]
        values = np.concatenate(arrays, axis=0).astype(np.float32) / 255.0
        return np.where(values < 0.5, 0.0, 1.0).astype(np.float32)
    return image_arrays(masks, "mask_image")


def image_items(value: Any, what: str) -> list[Any]:
    if value is None:
        raise InputError(f"`{what}` is required")
    items = [load_image(v, what) for v in (value if isinstance(value, list | tuple) else [value])]
    if not items:
        raise InputError(f"`{what}` is an empty list")
    if any(isinstance(i, Image.Image) for i in items) and not all(isinstance(i, Image.Image) for i in items):
        raise InputError(f"`{what}`: do not mix PIL images and arrays in one list")
    return items


def image_arrays(items: list[Any], what: str) -> np.ndarray:
    """Arrays or torch tensors (by their own methods: torch is not imported here), concatenated on axis 0."""
    parts = []
    for item in items:
        if type(item).__module__.split(".")[0] == "torch" and hasattr(item, "detach"):
            item = item.detach().cpu().float().numpy()
        if not isinstance(item, np.ndarray):
            raise InputTypeError(
                f"`{what}` must be a PIL image, an array, a torch tensor or a list of them, got {type(item).__name__}"
            )
        parts.append(item.astype(np.float32))
    array = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    if not np.isfinite(array).all():
        raise InputError(f"`{what}` has NaN or Inf values; pass finite values")
    return array
