"""``sdrt generate BUNDLE PROMPT``: load a bundle, generate, save the images (numbered, and a grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError

from .options import scheduler_class_name


def output_paths(output: Path, count: int) -> list[Path]:
    """``out.png`` for one image; ``out-0.png``, ``out-1.png``, ... for several."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(count)]


def generate(
    *,
    bundle: str,
    prompt: str | None,
    negative_prompt: str | None,
    steps: int,
    guidance: float | None,
    scheduler: str | None,
    seed: int | None,
    size: tuple[int, int] | None,
    num_images: int,
    provider: str,
    output: Path,
    progress: bool = True,
) -> list[Path]:
    """Load the bundle, generate, save the images (and a grid for several); return the paths written."""
    from sdrt.runtime import DDPMPipeline, DiffusionPipeline, make_image_grid
    from sdrt.schedulers import get_scheduler_class

    pipe = DiffusionPipeline.from_pretrained(bundle, provider=provider)
    pipe.set_progress_bar_config(disable=not progress)
    if scheduler:
        pipe.scheduler = get_scheduler_class(scheduler_class_name(scheduler)).from_config(
            pipe.scheduler.config
        )
    if isinstance(pipe, DDPMPipeline):
        if size is not None:
            raise InputError("--size does not apply to unconditional models (their size is fixed)")
        images = pipe(batch_size=num_images, generator=seed, num_inference_steps=steps).images
    else:
        if not prompt:
            raise InputError(f"{type(pipe).__name__} needs a prompt")
        kwargs = {} if guidance is None else {"guidance_scale": guidance}
        height, width = size or (None, None)
        images = pipe(
            prompt,
            negative_prompt=negative_prompt,
            height=height,
            width=width,
            num_inference_steps=steps,
            num_images_per_prompt=num_images,
            generator=seed,
            **kwargs,
        ).images
    paths = output_paths(output, len(images))
    if len(images) > 1:
        images = [*images, make_image_grid(images)]
        paths.append(output.with_name(f"{output.stem}-grid{output.suffix}"))
    for image, path in zip(images, paths):
        save_image(image, path)
    return paths


def save_image(image: Any, path: Path) -> None:
    """Save as the suffix says; a path that cannot be written is the caller's error, said in one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    except (OSError, ValueError) as error:  # PIL: ValueError for an unknown suffix
        raise InputError(f"cannot write the image {path}: {error}; choose another -o") from error
