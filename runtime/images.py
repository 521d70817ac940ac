"""Image pre- and post-processing, as diffusers' ``VaeImageProcessor`` does it, in NumPy and PIL.

Pixel ranges: the VAE works in [-1, 1]; users hand in and get back [0, 1] floats or uint8 PIL images.
Inputs may be PIL images, NumPy arrays in [0, 1] (HWC or NHWC; masks also HW or NHW), file paths, or
lists of them. Resizing: PIL images with Lanczos, arrays by nearest neighbour (as torch's
``interpolate`` does for diffusers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sdrt.runtime.errors import InputError

ImageInput = Any  # PIL.Image.Image | np.ndarray | str | os.PathLike | list of those


def load_image(image: Any, what: str = "image") -> Any:
    """A PIL image from a path (opened and decoded now) or the input unchanged."""
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        try:
            with Image.open(path) as opened:
                opened.load()
                return opened.copy()
        except FileNotFoundError:
            raise InputError(f"cannot read the {what} {str(path)!r}: no such file") from None
        except (UnidentifiedImageError, OSError) as error:
            raise InputError(
                f"cannot read the {what} {str(path)!r}: not an image PIL can decode ({error})"
            ) from None
    return image


def _as_list(image: ImageInput, what: str) -> list[Any]:
    if image is None:
        raise InputError(f"`{what}` is required")
    images = list(image) if isinstance(image, list | tuple) else [image]
    if not images:
        raise InputError(f"`{what}` is an empty list")
    images = [load_image(i, what) for i in images]
    for i in images:
        if not isinstance(i, Image.Image | np.ndarray):
            raise InputError(
                f"`{what}` must be a PIL image, a NumPy array in [0, 1], a file path, or a list of them; "
                f"got {type(i).__name__}"
            )
    if any(isinstance(i, Image.Image) for i in images) and not all(
        isinstance(i, Image.Image) for i in images
    ):
        raise InputError(f"`{what}`: do not mix PIL images and arrays in one list")
    return images


def default_size(image: Any, height: int | None, width: int | None, scale_factor: int) -> tuple[int, int]:
    """``get_default_height_width``: the image's size, rounded down to a multiple of ``scale_factor``."""
    if height is None:
        height = image.height if isinstance(image, Image.Image) else image.shape[1]
    if width is None:
        width = image.width if isinstance(image, Image.Image) else image.shape[2]
    return height - height % scale_factor, width - width % scale_factor


def nearest_resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """NCHW nearest-neighbour resize with torch's ``interpolate(mode="nearest")`` index rule."""
    return images[:, :, _nearest_index(images.shape[2], height)][
        :, :, :, _nearest_index(images.shape[3], width)
    ]


def _nearest_index(size_in: int, size_out: int) -> np.ndarray:
    out = np.arange(size_out)
    if size_in == size_out:
        return out
    if size_out == 2 * size_in:
        return out >> 1
    scale = np.float32(size_in / size_out)
    return np.minimum(np.floor(out.astype(np.float32) * scale).astype(np.int64), size_in - 1)


def _pil_to_nchw(images: list[Any], height: int, width: int, mode: str) -> np.ndarray:
    resized = [
        i.resize((width, height), resample=Image.Resampling.LANCZOS) if i.size != (width, height) else i
        for i in images
    ]
    arrays = [np.array(i.convert(mode)).astype(np.float32) / 255.0 for i in resized]
    stacked = np.stack(arrays, axis=0)
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    return stacked.transpose(0, 3, 1, 2)


def _arrays_to_nchw(images: list[np.ndarray], grayscale: bool) -> np.ndarray:
    if grayscale and len(images) == 1 and images[0].ndim == 3:
        one = images[0]  # NHW or HW1 (diffusers' rule for a 3-d mask)
        images = [one[None] if one.shape[-1] == 1 else one[..., None]]
    if grayscale:
        images = [i[..., None] if i.ndim == 2 else i for i in images]
    stacked = np.concatenate(images, axis=0) if images[0].ndim == 4 else np.stack(images, axis=0)
    if stacked.ndim != 4:
        raise InputError(f"image arrays must be HWC or NHWC, got shape {images[0].shape}")
    return stacked.astype(np.float32).transpose(0, 3, 1, 2)


def preprocess_image(
    image: ImageInput, height: int | None = None, width: int | None = None, scale_factor: int = 8
) -> np.ndarray:
    """RGB images -> float32 NCHW in [-1, 1] at (height, width) (default: the image's own size, floored to
    a multiple of ``scale_factor``)."""
    images = _as_list(image, "image")
    if isinstance(images[0], Image.Image):
        height, width = default_size(images[0], height, width, scale_factor)
        pixels = _pil_to_nchw(images, height, width, "RGB")
    else:
        pixels = _arrays_to_nchw(images, grayscale=False)
        if pixels.shape[1] == 4 and pixels.min() < 0:
            raise InputError("image arrays must be RGB in [0, 1]; pass latents with `latents=` instead")
        height, width = default_size(pixels.transpose(0, 2, 3, 1), height, width, scale_factor)
        pixels = nearest_resize(pixels, height, width)
    if pixels.shape[1] != 3:
        raise InputError(f"images must have 3 channels (RGB), got {pixels.shape[1]}")
    if pixels.min() < 0:  # diffusers accepts [-1, 1] input with a deprecation warning, unnormalized
        return pixels
    return 2.0 * pixels - 1.0


def preprocess_mask(
    mask: ImageInput, height: int | None = None, width: int | None = None, scale_factor: int = 8
) -> np.ndarray:
    """Masks -> float32 NCHW with one channel, binarized: 1 where the image is repainted (white)."""
    masks = _as_list(mask, "mask_image")
    if isinstance(masks[0], Image.Image):
        height, width = default_size(masks[0], height, width, scale_factor)
        pixels = _pil_to_nchw(masks, height, width, "L")
    else:
        pixels = _arrays_to_nchw(masks, grayscale=True)
        height, width = default_size(pixels.transpose(0, 2, 3, 1), height, width, scale_factor)
        pixels = nearest_resize(pixels, height, width)
    if pixels.shape[1] != 1:
        raise InputError(f"a mask must have a single channel, got {pixels.shape[1]}")
    return np.where(pixels < 0.5, 0.0, 1.0).astype(np.float32)


def denormalize(images: Any) -> Any:
    """[-1, 1] -> [0, 1], clipped (in the images' array module)."""
    return (images * 0.5 + 0.5).clip(0, 1)


def to_host(array: Any) -> np.ndarray:
    return array.get() if hasattr(array, "get") else np.asarray(array)


def numpy_to_pil(images: np.ndarray) -> list[Image.Image]:
    """NHWC floats in [0, 1] -> PIL images (rounded to uint8)."""
    if images.ndim == 3:
        images = images[None, ...]
    images = (images * 255).round().astype("uint8")
    if images.shape[-1] == 1:
        return [Image.fromarray(i.squeeze(), mode="L") for i in images]
    return [Image.fromarray(i) for i in images]


def postprocess(images: Any, output_type: str = "pil") -> Any:
    """Decoded NCHW images in [-1, 1] -> ``"pil"`` (list of PIL images) or ``"np"`` (NHWC float32 [0, 1])."""
    if output_type not in ("pil", "np"):
        raise InputError(f"output_type must be 'pil', 'np' or 'latent', got {output_type!r}")
    host = to_host(denormalize(images)).transpose(0, 2, 3, 1).astype(np.float32)
    return numpy_to_pil(host) if output_type == "pil" else host


def make_image_grid(
    images: Sequence[Image.Image], rows: int | None = None, cols: int | None = None
) -> Image.Image:
    """Paste images (all of one size) into a grid, row by row; default: as square as possible."""
    if not images:
        raise InputError("make_image_grid needs at least one image")
    if cols is None:
        cols = int(np.ceil(np.sqrt(len(images)))) if rows is None else int(np.ceil(len(images) / rows))
    if rows is None:
        rows = int(np.ceil(len(images) / cols))
    if rows * cols < len(images):
        raise InputError(f"a {rows}x{cols} grid cannot hold {len(images)} images")
    w, h = images[0].size
    grid = Image.new("RGB", size=(cols * w, rows * h))
    for i, image in enumerate(images):
        grid.paste(image, box=(i % cols * w, i // cols * h))
    return grid
