"""Score the shapes model: generate every (shape, colour) pair from several prompts and seeds and
let the checker read each picture.

    python -m training.evaluate_shapes models/sd-shapes [--per-pair 5] [--steps 25] [--guidance 7.5]
    python -m training.evaluate_shapes models/sd-shapes --bundle engines/sd-shapes   # sdrt's runtime

Uses diffusers' StableDiffusionPipeline (CPU, fp32), or with ``--bundle`` sdrt's runtime on an engine
bundle of the model (ONNX Runtime CPU), both with DPM++ 2M (DPMSolverMultistepScheduler) and the
same seeds. ``evaluation_cases`` and ``score_images`` are backend-free.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .shapes_checker import check_image
from .shapes_data import COLOURS, SHAPES

logger = logging.getLogger(__name__)

# Prompt forms, one per case of a pair (cycled); {c} colour, {s} shape.
PROMPT_FORMS = (
    "a {c} {s}",
    "a {c} {s} on a black background",
    "a small {c} {s}",
    "a {c} {s} on a white background",
    "a large {c} {s} on a gray background",
)


@dataclass(frozen=True)
class Case:
    """One picture to generate: the prompt, what it asks for, and the seed."""

    prompt: str
    shape: str
    colour: str
    seed: int


def evaluation_cases(per_pair: int = 5, *, seed: int = 0) -> list[Case]:
    """``per_pair`` cases for each (shape, colour) pair, with different prompts and seeds."""
    cases = []
    for shape in SHAPES:
        for colour in COLOURS:
            for k in range(per_pair):
                prompt = PROMPT_FORMS[k % len(PROMPT_FORMS)].format(c=colour, s=shape)
                cases.append(Case(prompt, shape, colour, seed + len(cases)))
    return cases


def score_images(
    images: Sequence[Image.Image | np.ndarray], labels: Sequence[tuple[str, str]]
) -> dict[str, object]:
    """Checker scores of pictures against their asked (shape, colour).

    Returns ``colour`` and ``shape`` (fractions right), ``count``, and ``results`` (per picture: asked
    and read shape and colour).
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; give one (shape, colour) per image")
    results = []
    for image, (shape, colour) in zip(images, labels):
        read = check_image(image)
        results.append(
            {"shape": shape, "colour": colour, "read_shape": read.shape, "read_colour": read.colour}
        )
    count = len(results)
    return {
        "count": count,
        "colour": sum(r["colour"] == r["read_colour"] for r in results) / max(count, 1),
        "shape": sum(r["shape"] == r["read_shape"] for r in results) / max(count, 1),
        "results": results,
    }


DEFAULT_SCHEDULER = "DPMSolverMultistepScheduler"  # DPM++ 2M; "model": the model's own scheduler config


def load_diffusers_pipeline(
    model_dir: str | Path, scheduler: str = DEFAULT_SCHEDULER
):  # -> diffusers pipeline
    """The model folder in diffusers, fp32 on CPU, with ``scheduler`` (a diffusers class name, or "model")."""
    import diffusers

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(model_dir))
    if scheduler != "model":
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate_diffusers(
    pipe, cases: Sequence[Case], *, steps: int = 25, guidance: float = 7.5, batch_size: int = 16
) -> list[Image.Image]:
    """Generate the cases' pictures with a diffusers pipeline (one torch generator per case's seed)."""
    import torch

    images: list[Image.Image] = []
    for start in tqdm(range(0, len(cases), batch_size), desc="generate", dynamic_ncols=True):
        batch = cases[start : start + batch_size]
        out = pipe(
            [c.prompt for c in batch],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=[torch.Generator().manual_seed(c.seed) for c in batch],
        )
        images.extend(out.images)
    return images


def load_sdrt_pipeline(bundle_dir: str | Path, *, provider: str = "cpu", scheduler: str = DEFAULT_SCHEDULER):
    """An engine bundle of the model in sdrt's runtime, with ``scheduler`` (a class name, or "model")."""
    from sdrt.runtime import DiffusionPipeline
    from sdrt.schedulers import get_scheduler_class

    pipe = DiffusionPipeline.from_pretrained(str(bundle_dir), provider=provider)
    if scheduler != "model":
        pipe.scheduler = get_scheduler_class(scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate_sdrt(
    pipe,
    cases: Sequence[Case],
    *,
    steps: int = 25,
    guidance: float = 7.5,
    batch_size: int = 16,
    cache_interval: int = 1,
) -> list[Image.Image]:
    """The cases' pictures from sdrt's runtime; integer seeds draw what diffusers' torch generators draw.
    ``cache_interval`` > 1: step caching (DeepCache; a bundle built with ``build-engine --deepcache``)."""
    caching = {} if cache_interval == 1 else {"cache_interval": cache_interval}
    images: list[Image.Image] = []
    for start in tqdm(range(0, len(cases), batch_size), desc="generate", dynamic_ncols=True):
        batch = cases[start : start + batch_size]
        out = pipe(
            [c.prompt for c in batch],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=[c.seed for c in batch],
            **caching,
        )
        images.extend(out.images)
    return images


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--per-pair", type=int, default=5)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-dir", type=Path, default=None, help="write the pictures and a grid here")
    p.add_argument("--json", type=Path, default=None, help="write the scores here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--bundle", type=Path, default=None, help="score sdrt's runtime on this engine bundle")
    p.add_argument("--provider", default="cpu", help="sdrt provider for --bundle (cpu, openvino, ...)")
    p.add_argument(
        "--cache-interval",
        type=int,
        default=1,
        help="with --bundle: step caching (DeepCache), the full UNet every N steps (a --deepcache bundle)",
    )
    p.add_argument(
        "--scheduler",
        default=DEFAULT_SCHEDULER,
        help="scheduler class name, or 'model' for the model's own config",
    )
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.monotonic()
    cases = evaluation_cases(args.per_pair, seed=args.seed)
    if args.bundle:
        pipe = load_sdrt_pipeline(args.bundle, provider=args.provider, scheduler=args.scheduler)
        images = generate_sdrt(
            pipe, cases, steps=args.steps, guidance=args.guidance, cache_interval=args.cache_interval
        )
    else:
        pipe = load_diffusers_pipeline(args.model_dir, scheduler=args.scheduler)
        images = generate_diffusers(pipe, cases, steps=args.steps, guidance=args.guidance)
    scores = score_images(images, [(c.shape, c.colour) for c in cases])
    seconds = time.monotonic() - start
    if args.save_dir:
        save_grid(images, args.save_dir, columns=args.per_pair)
    for case, result in zip(cases, scores["results"]):
        if (result["read_shape"], result["read_colour"]) != (case.shape, case.colour):
            print(f"miss: {case.prompt!r} seed {case.seed} -> {result['read_colour']} {result['read_shape']}")
    print(
        f"{scores['count']} images, {args.steps} steps {type(pipe.scheduler).__name__}, guidance {args.guidance}: "
        f"colour {100 * scores['colour']:.1f}%, shape {100 * scores['shape']:.1f}% ({seconds:.0f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps({**scores, "seconds": seconds}, indent=2))


def save_grid(images: Sequence[Image.Image], folder: Path, *, columns: int) -> Path:
    """Save each picture and one grid of them all (``columns`` per row) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        image.save(folder / f"{i:03d}.png")
    rows = (len(images) + columns - 1) // columns
    size = images[0].size
    grid = Image.new("RGB", (columns * size[0], rows * size[1]))
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * size[0], (i // columns) * size[1]))
    grid.save(folder / "grid.png")
    return folder / "grid.png"


if __name__ == "__main__":
    main()
