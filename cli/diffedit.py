"""``sdrt generate BUNDLE PROMPT --image X --source-prompt S``: DiffEdit in diffusers' three steps.

``generate_mask`` where S and PROMPT disagree, ``invert`` X under S (DDIM inversion), then the edit towards
PROMPT from the inverted latents, S as its negative prompt unless ``--negative-prompt`` is given (diffusers'
documented recipe). Each step starts its own generator from ``--seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError

from .task_choice import ImageInputs

# the edit's arguments that the mask and the inversion share
SHARED = ("num_inference_steps", "guidance_scale", "generator")


def diffedit_output(
    pipe: Any, inputs: ImageInputs, call: dict[str, Any], size: tuple[int, int] | None
) -> tuple[Any, Any]:
    """The edit's output and its mask as a picture of the output's size (white = repainted)."""
    from .generate import read_image

    if size is not None:
        raise InputError("--size does not apply to DiffEdit: the output has --image's size")
    if call.get("num_images_per_prompt", 1) != 1:
        raise InputError("--num-images: DiffEdit edits the one --image; drop --num-images")
    assert inputs.image is not None and inputs.source_prompt is not None  # chosen_task asked for both
    image = read_image(inputs.image, "--image", "RGB")
    source, target = inputs.source_prompt, call["prompt"]
    shared = {key: call[key] for key in SHARED if key in call}
    strength = {} if inputs.strength is None else {"inpaint_strength": inputs.strength}
    mask = pipe.generate_mask(image=image, source_prompt=source, target_prompt=target, **shared)
    inverted = pipe.invert(prompt=source, image=image, **strength, **shared).latents
    edit = {**call, "negative_prompt": call.get("negative_prompt", source), **strength}
    output = pipe(mask_image=mask, image_latents=inverted, **edit)
    return output, mask_picture(mask, output.images[0].size)


def mask_picture(mask: Any, size: tuple[int, int]) -> Any:
    """generate_mask's latent-sized 0/1 mask as a grayscale picture of ``size`` (width, height)."""
    import numpy as np
    from PIL import Image

    pixels = (np.asarray(mask)[0] * 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize(size, Image.Resampling.NEAREST)


def mask_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}-mask{output.suffix}")
