"""``sdrt``: generate images from an engine bundle, inspect a bundle, benchmark it.

sdrt generate engines/NAME "a photo of a cat" -n "blurry" --steps 30 --seed 1234 -o cat.png
sdrt inspect engines/NAME
sdrt bench engines/NAME --steps 30 --runs 3 --compare-diffusers MODEL_DIR --json bench.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

# short names for --scheduler (the diffusers class names are accepted too)
SCHEDULER_ALIASES = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "lms": "LMSDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpm2": "KDPM2DiscreteScheduler",
    "dpm2_a": "KDPM2AncestralDiscreteScheduler",
    "dpmpp": "DPMSolverMultistepScheduler",
    "dpmpp_single": "DPMSolverSinglestepScheduler",
    "deis": "DEISMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}


def scheduler_class_name(name: str) -> str:
    """A diffusers scheduler class name from a class name or a short alias (case-insensitive)."""
    from sdrt.schedulers import SCHEDULER_NAMES

    key = name.strip().lower().replace("-", "_").replace("+", "p")
    if key in SCHEDULER_ALIASES:
        return SCHEDULER_ALIASES[key]
    for class_name in SCHEDULER_NAMES:
        if class_name.lower() == name.strip().lower():
            return class_name
    choices = ", ".join([*SCHEDULER_ALIASES, *SCHEDULER_NAMES])
    raise ValueError(f"unknown scheduler {name!r}; choose one of {choices}")


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` (width x height) or ``"512"`` -> (height, width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--size must be WxH (e.g. 768x512) or one number, got {text!r}"
        ) from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"--size must be WxH (e.g. 768x512) or one number, got {text!r}")
    return parts[1], parts[0]


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
            raise ValueError("--size does not apply to unconditional models (their size is fixed)")
        images = pipe(batch_size=num_images, generator=seed, num_inference_steps=steps).images
    else:
        if not prompt:
            raise ValueError(f"{type(pipe).__name__} needs a prompt")
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
    output.parent.mkdir(parents=True, exist_ok=True)
    for image, path in zip(images, paths):
        image.save(path)
    if len(images) > 1:
        grid = output.with_name(f"{output.stem}-grid{output.suffix}")
        make_image_grid(images).save(grid)
        paths.append(grid)
    return paths


def bench(
    *,
    bundle: str,
    steps: int,
    runs: int,
    warmup: int,
    size: tuple[int, int] | None,
    batch: int,
    scheduler: str | None,
    provider: str,
    prompt: str,
    compare_diffusers: str | None,
    json_path: Path | None,
) -> str:
    """Run the benchmark (beside diffusers when a model folder is given); write the JSON; return the table."""
    from sdrt.runtime.bench.report import format_table, write_json
    from sdrt.runtime.bench.run import run_bench

    result = run_bench(
        bundle,
        steps=steps,
        runs=runs,
        warmup=warmup,
        size=size,
        batch=batch,
        scheduler=scheduler_class_name(scheduler) if scheduler else None,
        provider=provider,
        prompt=prompt,
        compare_diffusers=compare_diffusers,
    )
    if json_path is not None:
        write_json(result, json_path)
    return format_table(result)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdrt", description="Run diffusion engine bundles built by build-engine."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and run")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate images from a bundle")
    gen.add_argument("bundle", help="engine bundle folder (engines/NAME)")
    gen.add_argument("prompt", nargs="?", default=None, help="the prompt (not for unconditional models)")
    gen.add_argument("-n", "--negative-prompt", default=None, help="what the image should not show")
    gen.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; 1000 for DDPM)")
    gen.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the pipeline's)")
    gen.add_argument(
        "--scheduler", default=None, help="scheduler class or alias (euler, euler_a, dpmpp, ddim...)"
    )
    gen.add_argument(
        "--seed", type=int, default=None, help="seed; the same seed as diffusers gives its image"
    )
    gen.add_argument("--size", type=parse_size, default=None, help="WxH in pixels (default: the model's)")
    gen.add_argument("--num-images", type=int, default=1, help="images to generate (numbered files + a grid)")
    gen.add_argument("--provider", default="auto", help="auto, cpu, cuda or tensorrt")
    gen.add_argument("-o", "--output", type=Path, default=Path("out.png"), help="output image path")
    gen.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    ins = sub.add_parser("inspect", help="show what a bundle holds and which providers can run it")
    ins.add_argument("bundle", help="engine bundle folder")

    bench = sub.add_parser(
        "bench", help="per-stage latency of a bundle's pipeline (optionally beside diffusers)"
    )
    bench.add_argument("bundle", help="engine bundle folder")
    bench.add_argument("--steps", type=int, default=30, help="denoising steps per generation (default 30)")
    bench.add_argument("--runs", type=int, default=3, help="timed generations (default 3)")
    bench.add_argument(
        "--warmup", type=int, default=1, help="untimed generations after the cold one (default 1)"
    )
    bench.add_argument("--size", type=parse_size, default=None, help="WxH in pixels (default: the model's)")
    bench.add_argument("--batch", type=int, default=1, help="prompts (images) per generation (default 1)")
    bench.add_argument("--scheduler", default=None, help="scheduler class or alias (default: the bundle's)")
    bench.add_argument("--provider", default="auto", help="auto, cpu, cuda or tensorrt")
    bench.add_argument("--prompt", default="a photo of an astronaut riding a horse")
    bench.add_argument(
        "--compare-diffusers",
        metavar="MODEL_DIR",
        help="also time diffusers on this model folder (the one the bundle was built from), runs alternating",
    )
    bench.add_argument(
        "--json", type=Path, metavar="FILE", help="write every figure, the machine and settings"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        if args.command == "generate":
            if args.num_images < 1:
                raise ValueError("--num-images must be at least 1")
            from sdrt.runtime.bundle.bundle import open_bundle

            steps = args.steps
            if steps is None:
                steps = 1000 if open_bundle(args.bundle).model_type == "uncond" else 50
            paths = generate(
                bundle=args.bundle,
                prompt=args.prompt,
                negative_prompt=args.negative_prompt,
                steps=steps,
                guidance=args.guidance,
                scheduler=args.scheduler,
                seed=args.seed,
                size=args.size,
                num_images=args.num_images,
                provider=args.provider,
                output=args.output,
                progress=not args.no_progress,
            )
            for path in paths:
                print(path)
        elif args.command == "inspect":
            from sdrt.runtime.bundle.bundle import open_bundle
            from sdrt.runtime.bundle.info import describe_bundle

            print(describe_bundle(open_bundle(args.bundle)))
        else:
            table = bench(
                bundle=args.bundle,
                steps=args.steps,
                runs=args.runs,
                warmup=args.warmup,
                size=args.size,
                batch=args.batch,
                scheduler=args.scheduler,
                provider=args.provider,
                prompt=args.prompt,
                compare_diffusers=args.compare_diffusers,
                json_path=args.json,
            )
            print(table)
    except (ValueError, FileNotFoundError, ImportError, TypeError) as error:
        print(f"sdrt {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
