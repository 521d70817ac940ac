"""``sdrt generate --adapter-image/--adapter-scale``: the T2I-Adapter pipelines' call arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError

from .task_choice import ImageInputs


def adapter_arguments(inputs: ImageInputs, size: tuple[int, int] | None) -> dict[str, Any]:
    """The T2I-Adapter pipelines' conditioning images (grayscale kept: sketch adapters take one channel), scales
    and size."""
    count, scales = len(inputs.adapter_images), list(inputs.adapter_scales) or [1.0]
    if len(scales) not in (1, count):
        raise InputError(
            f"{len(scales)} --adapter-scale for {count} --adapter-image: pass one, or one per image"
        )
    images = [_read(path) for path in inputs.adapter_images]
    height, width = size or (None, None)
    return {
        "image": images[0] if count == 1 else images,
        "adapter_conditioning_scale": scales[0] if len(scales) == 1 else scales,
        "height": height,
        "width": width,
    }


def _read(path: Path) -> Any:
    """The picture at ``path`` as PIL: grayscale kept as one channel (sketch adapters), anything else RGB."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"--adapter-image {path}: no such file")
    try:
        with Image.open(path) as image:
            gray = image.mode in ("1", "L", "LA", "I", "I;16", "F")
            return image.convert("L" if gray else "RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"--adapter-image {path} is not an image Pillow can read ({error})") from error
