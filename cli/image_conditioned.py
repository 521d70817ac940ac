"""``sdrt generate``'s arguments for the pipelines conditioned on an image rather than a prompt: image variation
(``--image``) and Paint-by-Example (``--image``, ``--mask``, ``--example-image``); Stable unCLIP's image beside
its optional prompt (``--image``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.families import IMAGE_VARIATION, PAINT_BY_EXAMPLE, UNCLIP_IMAGE_TO_IMAGE

from .task_choice import ImageInputs

# the tasks whose pipelines read no prompt but guide (by the image embedding): --guidance applies
IMAGE_GUIDED_TASKS = (IMAGE_VARIATION, PAINT_BY_EXAMPLE)
# the prompted tasks whose prompt may be left out (diffusers' default: "")
PROMPT_OPTIONAL_TASKS = (UNCLIP_IMAGE_TO_IMAGE,)


def read_depth_map(path: Path) -> Any:
    """``--depth-map``: a .npy array (H x W or N x H x W), or an image read as grayscale values."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"--depth-map {path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InputError(f"--depth-map {path} is not a NumPy .npy array ({error})") from error
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("F"), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(
            f"--depth-map {path} is neither a .npy array nor an image Pillow can read ({error})"
        ) from error


def read_image(path: Path, flag: str, mode: str) -> Any:
    """The picture at ``path`` (PIL, ``mode``), or an error naming the flag."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"{flag} {path}: no such file")
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"{flag} {path} is not an image Pillow can read ({error})") from error


def image_guided_arguments(
    task: str, inputs: ImageInputs, num_images: int, guidance: float | None, size: tuple[int, int] | None
) -> dict[str, Any]:
    """The call's arguments: the pictures, ``num_images_per_prompt`` and the guidance scale (and, for image
    variation, the size; Paint-by-Example's output has the image's size)."""
    assert inputs.image is not None  # chosen_task asked for it
    arguments: dict[str, Any] = {"num_images_per_prompt": num_images}
    arguments |= {} if guidance is None else {"guidance_scale": guidance}
    if task == IMAGE_VARIATION:
        height, width = size or (None, None)
        return {
            "image": read_image(inputs.image, "--image", "RGB"),
            "height": height,
            "width": width,
            **arguments,
        }
    if size is not None:
        raise InputError("--size does not apply to Paint-by-Example: the output has the --image's size")
    assert inputs.mask is not None and inputs.example_image is not None  # chosen_task asked for them
    return {
        "image": read_image(inputs.image, "--image", "RGB"),
        "mask_image": read_image(inputs.mask, "--mask", "L"),
        "example_image": read_image(inputs.example_image, "--example-image", "RGB"),
        **arguments,
    }
