"""Image pre- and post-processing, as diffusers' ``VaeImageProcessor`` does it, in NumPy and PIL.

Pixel ranges: the VAE works in [-1, 1]; users hand in and get back [0, 1] floats or uint8 PIL images.
Inputs may be PIL images, NumPy arrays (channels last as diffusers reads them: HWC or NHWC; masks HW,
NHW, HW1 or NHW1), torch tensors (channels first: CHW or NCHW; masks HW, NHW or N1HW; converted by
their own methods, torch is never imported here), file paths, or lists of them. Float arrays are in
[0, 1] ([-1, 1] images are taken, with diffusers' deprecation warning); uint8 arrays in 0..255; anything
else (0..255 floats, NaN, channels-first NumPy, RGB masks) is refused with the fix. Resizing: PIL images
with Lanczos, arrays by nearest neighbour (as torch's ``interpolate`` does for diffusers).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sdrt.runtime.errors import InputError, InputTypeError

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
    kinds = {_kind(i) for i in images}
    if None in kinds:
        bad = next(i for i in images if _kind(i) is None)
        raise InputTypeError(
            f"`{what}` must be a PIL image, a NumPy array in [0, 1], a torch tensor, a file path, or a list of "
            f"them; got {type(bad).__name__}"
        )
    if len(kinds) > 1:
        raise InputError(f"`{what}`: do not mix PIL images, NumPy arrays and torch tensors in one list")
    return images


def _kind(image: Any) -> str | None:
    if isinstance(image, Image.Image):
        return "pil"
    if isinstance(image, np.ndarray):
        return "numpy"
    if type(image).__module__.split(".")[0] == "torch" and hasattr(image, "detach"):
        return "torch"
    return None


def default_size(image: Any, height: int | None, width: int | None, scale_factor: int) -> tuple[int, int]:
    """``get_default_height_width``: the image's size (PIL, or an NCHW array), floored to a multiple of
    ``scale_factor``."""
    if height is None:
        height = image.height if isinstance(image, Image.Image) else image.shape[2]
    if width is None:
        width = image.width if isinstance(image, Image.Image) else image.shape[3]
    height, width = height - height % scale_factor, width - width % scale_factor
    if height < 1 or width < 1:  # an image smaller than one latent pixel: nothing to resize to
        size = (
            f"{image.width}x{image.height}"
            if isinstance(image, Image.Image)
            else "x".join(map(str, image.shape[2:][::-1]))
        )
        raise InputError(
            f"the image is {size} pixels (width x height), smaller than the model's {scale_factor}-pixel "
            "grid; pass a larger image, or height and width to resize it to"
        )
    return height, width


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


def _pil_to_nchw(
    images: list[Any],
    height: int,
    width: int,
    mode: str,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> np.ndarray:
    resized = [
        i.resize((width, height), resample=resample) if i.size != (width, height) else i for i in images
    ]
    arrays = [np.array(i.convert(mode)).astype(np.float32) / 255.0 for i in resized]
    stacked = np.stack(arrays, axis=0)
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    return stacked.transpose(0, 3, 1, 2)


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    """A caller's torch tensor on the host (bfloat16 and half as float32), by its own methods."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.numpy()


def _numpy_item_to_nchw(array: np.ndarray, what: str, mask: bool) -> np.ndarray:
    """One NumPy item, channels last as diffusers reads NumPy (HWC, NHWC; masks also HW, NHW, HW1, NHW1)."""
    shape = tuple(array.shape)
    if mask and array.ndim == 2:
        return array[None, None]
    if mask and array.ndim == 3 and shape[-1] not in (1, 3, 4):
        return array[:, None]  # NHW
    if array.ndim not in (3, 4):
        raise InputError(
            f"`{what}` arrays must be {'HW, NHW, HW1 or NHW1' if mask else 'HWC or NHWC'} (channels last, as "
            f"diffusers reads NumPy images), got shape {shape}"
        )
    channels_first = shape[-1] not in (1, 3, 4) and shape[-3] in (1, 3, 4)
    if channels_first:
        order = "(1, 2, 0)" if array.ndim == 3 else "(0, 2, 3, 1)"
        raise InputError(
            f"`{what}` has shape {shape}, which looks channels first (CHW/NCHW); NumPy images are channels last "
            f"as diffusers reads them: pass {what}.transpose{order}"
        )
    array = array[None] if array.ndim == 3 else array
    return array.transpose(0, 3, 1, 2)


def _torch_item_to_nchw(array: np.ndarray, what: str, mask: bool) -> np.ndarray:
    """One torch item, channels first as diffusers reads tensors (CHW, NCHW; masks also HW, NHW)."""
    if array.ndim == 2 and mask:
        return array[None, None]
    if array.ndim == 3:
        return array[:, None] if mask else array[None]
    if array.ndim == 4:
        return array
    raise InputError(
        f"`{what}` tensors must be {'HW, NHW or N1HW' if mask else 'CHW or NCHW'}, got shape {tuple(array.shape)}"
    )


def _to_nchw(images: list[Any], what: str, mask: bool) -> tuple[np.ndarray, bool]:
    """Arrays or tensors -> (float NCHW array, whether they came as torch tensors)."""
    torch = _kind(images[0]) == "torch"
    parts = []
    for item in images:
        array = _torch_to_numpy(item) if torch else np.asarray(item)
        array = _to_unit_range(array, what)
        if torch:
            parts.append(_torch_item_to_nchw(array, what, mask))
        else:
            parts.append(_numpy_item_to_nchw(array, what, mask))
    if len({p.shape[1:] for p in parts}) > 1:
        shapes = sorted({tuple(p.shape[1:]) for p in parts})
        raise InputError(
            f"`{what}`: the images of a list must have one size and channel count, got {shapes} (CHW)"
        )
    return np.concatenate(parts, axis=0).astype(np.float32, copy=False), torch


def _to_unit_range(array: np.ndarray, what: str) -> np.ndarray:
    """uint8 read as 0..255, bool as 0/1; other integers refused; floats must be finite."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype.kind != "f":
        raise InputTypeError(
            f"`{what}` is an array of {array.dtype}: pass floats in [0, 1] or uint8 in 0..255"
        )
    if array.size and not np.isfinite(array).all():
        raise InputError(f"`{what}` has NaN or Inf values; pass finite floats in [0, 1]")
    return array


def _check_range(pixels: np.ndarray, what: str, low: float, hint: str) -> None:
    if pixels.size and (pixels.min() < low - _SLACK or pixels.max() > 1 + _SLACK):
        raise InputError(
            f"`{what}` has values in [{pixels.min():g}, {pixels.max():g}]; {hint} (uint8 arrays are read as "
            "0..255; for 0..255 floats pass array / 255)"
        )


_SLACK = 1e-3  # rounding in a caller's own float arithmetic


def preprocess_image(
    image: ImageInput,
    height: int | None = None,
    width: int | None = None,
    scale_factor: int = 8,
    latent_channels: int | None = None,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> np.ndarray:
    """RGB images -> float32 NCHW in [-1, 1] at (height, width) (default: the image's own size, floored to
    a multiple of ``scale_factor``). With ``latent_channels``, a torch tensor with that many channels is
    taken as latents and returned as it is (as diffusers' image processor does). ``resample``: the PIL
    filter (diffusers' ``VaeImageProcessor(resample=...)``: Lanczos, bicubic for the upscalers)."""
    images = _as_list(image, "image")
    if isinstance(images[0], Image.Image):
        height, width = default_size(images[0], height, width, scale_factor)
        pixels = _pil_to_nchw(images, height, width, "RGB", resample)
    else:
        pixels, from_torch = _to_nchw(images, "image", mask=False)
        if from_torch and latent_channels is not None and pixels.shape[1] == latent_channels:
            return pixels
        if pixels.shape[1] != 3:
            raise InputError(
                f"`image` must have 3 channels (RGB), got {pixels.shape[1]} (shape {tuple(pixels.shape)})"
            )
        _check_range(pixels, "image", -1.0, "image arrays must be floats in [0, 1]")
        height, width = default_size(pixels, height, width, scale_factor)
        pixels = nearest_resize(pixels, height, width)
    if pixels.min() < 0:  # diffusers accepts [-1, 1] input with a deprecation warning, unnormalized
        warnings.warn(
            "`image` has values below 0: read as [-1, 1] (deprecated in diffusers; pass [0, 1])",
            FutureWarning,
            stacklevel=3,
        )
        return pixels
    return 2.0 * pixels - 1.0


def rgb_pil_images(image: ImageInput, what: str = "image") -> list[Image.Image]:
    """The images as 8-bit RGB PIL images, for a processor that resizes with Pillow: PIL images as they
    are, arrays and tensors in [0, 1] rounded to 0..255 (``what``: the argument's name, for errors)."""
    images = _as_list(image, what)
    if isinstance(images[0], Image.Image):
        return [i.convert("RGB") for i in images]
    pixels = np.clip(_to_nchw(images, what, mask=False)[0], 0.0, 1.0)
    if pixels.shape[1] not in (1, 3):
        raise InputError(f"`{what}` must have 3 channels (RGB), got shape {tuple(pixels.shape)}")
    return [i.convert("RGB") for i in numpy_to_pil(pixels.transpose(0, 2, 3, 1))]


def preprocess_control_image(
    image: ImageInput, height: int | None = None, width: int | None = None, scale_factor: int = 8
) -> np.ndarray:
    """A ControlNet's control image(s) -> float32 NCHW in [0, 1] at (height, width) (default: the image's own
    size floored to a multiple of ``scale_factor``), as diffusers' ``control_image_processor`` (RGB, not
    normalized) prepares it: PIL images resized with Lanczos, arrays by nearest neighbour."""
    images = _as_list(image, "image")
    if isinstance(images[0], Image.Image):
        height, width = default_size(images[0], height, width, scale_factor)
        return _pil_to_nchw(images, height, width, "RGB")
    pixels, _ = _to_nchw(images, "image", mask=False)
    if pixels.shape[1] != 3:
        raise InputError(
            f"the control `image` must have 3 channels (RGB), got {pixels.shape[1]} (shape {tuple(pixels.shape)})"
        )
    _check_range(pixels, "image", -1.0, "control image arrays must be floats in [0, 1]")
    height, width = default_size(pixels, height, width, scale_factor)
    return nearest_resize(pixels, height, width)


def preprocess_mask(
    mask: ImageInput, height: int | None = None, width: int | None = None, scale_factor: int = 8
) -> np.ndarray:
    """Masks -> float32 NCHW with one channel, binarized: 1 where the image is repainted (white).

    NumPy masks: HW, NHW, HW1 or NHW1 (diffusers' reading of a 3-d array: HW1 if the last axis is 1, else
    NHW); torch masks: HW, NHW or N1HW. An RGB array is refused (pass one channel, or a PIL image, which
    is converted to grayscale as diffusers does)."""
    masks = _as_list(mask, "mask_image")
    if isinstance(masks[0], Image.Image):
        height, width = default_size(masks[0], height, width, scale_factor)
        pixels = _pil_to_nchw(masks, height, width, "L")
    else:
        pixels, _ = _to_nchw(masks, "mask_image", mask=True)
        if pixels.shape[1] != 1:
            raise InputError(
                f"`mask_image` must have one channel, got shape {tuple(pixels.shape)} as NCHW: pass mask[..., 0] "
                "of an RGB mask array, or a PIL image"
            )
        _check_range(pixels, "mask_image", 0.0, "mask arrays must be floats in [0, 1] (white = repaint)")
        height, width = default_size(pixels, height, width, scale_factor)
        pixels = nearest_resize(pixels, height, width)
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
