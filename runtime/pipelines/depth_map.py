"""The depth channel of depth-to-image, as diffusers' ``prepare_depth_map`` makes it.

A depth map (the DPT's ``predicted_depth`` or the caller's ``depth_map``, N x H x W) is resized to the
latents' size by torch's ``interpolate(mode="bicubic", align_corners=False)``, normalised per image to
[-1, 1] by its min and max, repeated to the batch and doubled for classifier-free guidance.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError

from .arrays import repeat_to_batch, to_xp

CUBIC_A = -0.75  # torch's bicubic coefficient


def _cubic(distance: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.75 (torch's ``upsample_bicubic2d``)."""
    x, a = np.abs(distance), CUBIC_A
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def bicubic_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The [size_out, size_in] matrix of torch's bicubic resize along one axis (``align_corners=False``:
    half-pixel centres, no clamp of the source position, border samples repeated)."""
    scale = np.float32(size_in / size_out)  # torch works in float32
    source = (np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    first = np.floor(source)
    source, first = source.astype(np.float64), first.astype(np.float64)
    matrix = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    for offset in (-1, 0, 1, 2):
        weight = _cubic(source - (first + offset))
        index = np.clip(first + offset, 0, size_in - 1).astype(np.int64)
        np.add.at(matrix, (rows, index), weight)
    return matrix


def bicubic_resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """N x H x W -> N x ``height`` x ``width`` (float64 weights, float32 result)."""
    rows = bicubic_matrix(images.shape[1], height)
    columns = bicubic_matrix(images.shape[2], width)
    resized = np.einsum("oh,nhw,pw->nop", rows, images.astype(np.float64), columns)
    return resized.astype(np.float32)


def as_depth_array(depth_map: Any) -> np.ndarray:
    """A caller's ``depth_map`` (NumPy, CuPy or torch; N x H x W, or H x W for one image) as float32 N x H x W."""
    if type(depth_map).__module__.split(".")[0] == "torch":
        depth_map = depth_map.detach().cpu().float().numpy()
    elif hasattr(depth_map, "get"):
        depth_map = depth_map.get()
    try:
        array = np.asarray(depth_map, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InputError(
            f"`depth_map` must be an array of numbers (N x H x W), got {type(depth_map).__name__}"
        ) from error
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(
            f"`depth_map` must be N x H x W (one map per image; H x W for one), got shape {tuple(array.shape)}"
        )
    if not np.isfinite(array).all():
        raise InputError("`depth_map` has NaN or Inf values; pass finite depths")
    return array


def prepare_depth_map(
    xp: ModuleType, depth: np.ndarray, latent_size: tuple[int, int], batch_size: int, guided: bool
) -> Any:
    """``depth`` (N x H x W) -> the UNet's depth channel: N' x 1 x h x w in [-1, 1] for ``batch_size`` images,
    doubled when ``guided``."""
    count = depth.shape[0]
    if count > batch_size or batch_size % count != 0:
        raise InputError(
            f"`depth_map` has {count} maps for {batch_size} images (prompts x num_images_per_prompt); pass one map, "
            "or one per image"
        )
    resized = bicubic_resize(depth, *latent_size)[:, None]
    low = resized.min(axis=(1, 2, 3), keepdims=True)
    high = resized.max(axis=(1, 2, 3), keepdims=True)
    if (high == low).any():
        raise InputError(
            "the depth map has one value everywhere at the latents' size, so it cannot be normalised to [-1, 1] "
            "(diffusers divides by zero there); pass a depth map with some relief"
        )
    normalised = 2.0 * (resized - low) / (high - low) - 1.0
    channel = repeat_to_batch(xp, to_xp(xp, normalised), batch_size, "depth_map")
    return xp.concatenate([channel] * 2) if guided else channel
