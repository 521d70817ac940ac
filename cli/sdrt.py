"""``sdrt``: generate images from an engine bundle, inspect a bundle, benchmark it.

sdrt generate engines/NAME "a photo of a cat" -n "blurry" --steps 30 --seed 1234 -o cat.png
sdrt generate engines/NAME "a cat in snow" --image cat.png --strength 0.6 -o snowy.png
sdrt generate engines/NAME "a red hat" --image cat.png --mask hat-mask.png -o hat.png
sdrt generate engines/DEPTH "a stone statue" --image cat.png [--depth-map depth.npy] -o statue.png
sdrt generate engines/VARIATION --image cat.png --num-images 4 -o cats.png
sdrt generate engines/UNCLIP "a cat in snow" --image cat.png -o snowy.png
sdrt generate engines/PAINT_BY_EXAMPLE --image room.png --mask sofa-mask.png --example-image sofa.png -o new.png
sdrt generate engines/DIT --class-label "golden retriever" --class-label 1 -o dogs.png
sdrt generate engines/SDXL "a lion at dusk" --refiner engines/SDXL_REFINER [--refiner-start 0.8] -o lion.png
sdrt inspect engines/NAME
sdrt bench engines/NAME --steps 30 --runs 3 --compare-diffusers MODEL_DIR --json bench.json
sdrt serve engines/NAME [engines/OTHER ...] --port 7860 --replicas 2
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sdrt.runtime.bench.run import DEFAULT_PROMPT
from sdrt.runtime.errors import InputError

from . import run
from .bench import bench
from .generate import generate
from .ip_adapter_arguments import add_ip_adapter_flags
from .options import parse_size
from .refiner import Refiner
from .serve import serve, serve_options
from .task_choice import image_inputs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdrt", description="Run diffusion engine bundles built by build-engine."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and run")
    sub = parser.add_subparsers(dest="command", required=True)
    _generate_options(sub.add_parser("generate", help="generate images from a bundle"))
    ins = sub.add_parser("inspect", help="show what a bundle holds and which providers can run it")
    ins.add_argument("bundle", help="engine bundle folder")
    ins.add_argument(
        "--verify",
        action="store_true",
        help="check every file, and the per-machine caches it uses, against their recorded sha256",
    )
    _bench_options(
        sub.add_parser("bench", help="per-stage latency of a bundle's pipeline (optionally beside diffusers)")
    )
    serve_options(
        sub.add_parser(
            "serve", help="serve bundles on Ray Serve with AUTOMATIC1111's and OpenAI's image APIs"
        )
    )
    return parser


def _generate_options(gen: argparse.ArgumentParser) -> None:
    gen.add_argument("bundle", help="engine bundle folder (engines/NAME)")
    gen.add_argument("prompt", nargs="?", default=None, help="the prompt (not for unconditional models)")
    gen.add_argument(
        "-n", "--negative-prompt", default=None, help="what the image should not show (default: none)"
    )
    gen.add_argument(
        "--prompt-syntax",
        choices=("diffusers", "a1111"),
        default="diffusers",
        help="a1111: AUTOMATIC1111's (word:1.2), (word), [word], BREAK and prompts over 75 tokens "
        "(default: diffusers, the prompt as plain text)",
    )
    gen.add_argument(
        "--steps", type=int, default=None, help="denoising steps (default: 50; 1000 for DDPM models)"
    )
    gen.add_argument(
        "--guidance", type=float, default=None, help="guidance scale (default: the pipeline's, 7.5; SDXL 5.0)"
    )
    _cache_option(gen)
    _scheduler_options(gen)
    gen.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed; the same seed as diffusers gives its image (default: random)",
    )
    gen.add_argument(
        "--size", type=parse_size, default=None, help="WxH in pixels (default: the model's, see sdrt inspect)"
    )
    gen.add_argument(
        "--num-images", type=int, default=1, help="images to generate, numbered files and a grid (default: 1)"
    )
    gen.add_argument(
        "--lora",
        action="append",
        default=None,
        metavar="FILE[:SCALE]",
        help="a LoRA .safetensors (diffusers or kohya) applied at run time at SCALE (default 1); repeatable. "
        "ONNX Runtime bundles (provider cpu/cuda); build-engine --lora merges it into any backend",
    )
    gen.add_argument(
        "--provider",
        default="auto",
        help="auto, cpu, openvino, cuda or tensorrt (default: auto, the fastest installed the bundle has)",
    )
    _static_shapes_option(gen)
    _image_options(gen)
    _adapter_options(gen)
    _guided_options(gen)
    _refiner_options(gen)
    gen.add_argument(
        "-o", "--output", type=Path, default=Path("out.png"), help="output image path (default: out.png)"
    )
    gen.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _static_shapes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--static-shapes",
        action="store_true",
        help="OpenVINO: compile each engine for the image's shapes, as optimum-intel's reshape() (faster calls "
        "after a few seconds' compile per new size; the same as SDRT_OPENVINO_STATIC_SHAPES=1)",
    )


def _scheduler_options(gen: argparse.ArgumentParser) -> None:
    gen.add_argument(
        "--eta",
        type=float,
        default=None,
        help="the scheduler's eta: DDIM's noise, TCD's gamma (0.3 in TCD's recipe) (default: the pipeline's, 0)",
    )
    gen.add_argument(
        "--scheduler",
        default=None,
        help="scheduler class or alias: euler, euler_a, dpmpp, ddim, pndm, unipc... "
        "(default: the bundle's scheduler/scheduler_config.json, as the model ships it)",
    )


def _refiner_options(gen: argparse.ArgumentParser) -> None:
    gen.add_argument(
        "--refiner",
        type=Path,
        default=None,
        metavar="REFINER_BUNDLE",
        help="SDXL base + refiner: the base denoises the first --refiner-start of the schedule, this refiner "
        "bundle (an SDXL refiner's or base's, built by build-engine) the rest",
    )
    gen.add_argument(
        "--refiner-start",
        type=float,
        default=None,
        metavar="FRACTION",
        help="with --refiner: the fraction of the schedule where the refiner takes over (default: 0.8)",
    )


def _cache_option(gen: argparse.ArgumentParser) -> None:
    gen.add_argument(
        "--cache-interval",
        type=int,
        default=1,
        metavar="N",
        help="step caching (DeepCache): the full UNet every N steps, its shallow part on the cached feature in "
        "between (default 1: off; the bundle built with build-engine --deepcache)",
    )


def _image_options(gen: argparse.ArgumentParser) -> None:
    """The flags that start from a picture or guide by control images (the bundle and these choose the pipeline)."""
    gen.add_argument(
        "--class-label",
        action="append",
        default=None,
        metavar="NAME",
        help='DiT bundles: an ImageNet class by name (e.g. "golden retriever") or id; class-conditional consistency '
        "models: a class id; repeat for several images",
    )
    gen.add_argument(
        "--image",
        type=Path,
        default=None,
        help="start from this picture: image-to-image, or inpainting with --mask (the output has its size)",
    )
    gen.add_argument(
        "--mask", type=Path, default=None, help="inpainting mask for --image: white is repainted, black kept"
    )
    gen.add_argument(
        "--strength",
        type=float,
        default=None,
        help="how much of --image is repainted, 0 to 1 (default: 0.8 image-to-image, 1.0 inpainting)",
    )
    gen.add_argument(
        "--image-guidance",
        type=float,
        default=None,
        help="InstructPix2Pix bundles: image_guidance_scale, how closely the edit keeps to --image (default: "
        "1.5; below 1 turns guidance off, as in diffusers)",
    )
    gen.add_argument(
        "--example-image",
        type=Path,
        default=None,
        help="Paint-by-Example bundles: the example painted into --image where --mask is white",
    )
    gen.add_argument(
        "--depth-map",
        type=Path,
        default=None,
        help="depth-to-image bundles: the depth of --image as a .npy array (HxW) or a grayscale image "
        "(default: the bundle's depth estimator)",
    )
    gen.add_argument(
        "--control-image",
        type=Path,
        action="append",
        default=None,
        help="control image for the bundle's ControlNet (built with build-engine --controlnet), resized to the "
        "output size; repeatable, one per ControlNet in build order",
    )
    gen.add_argument(
        "--control-scale",
        type=float,
        action="append",
        default=None,
        help="ControlNet conditioning scale: one for all, or one per --control-image (default: 1.0)",
    )
    add_ip_adapter_flags(gen)


def _adapter_options(gen: argparse.ArgumentParser) -> None:
    """The flags that guide by T2I-Adapter images (a bundle built with build-engine --adapter)."""
    gen.add_argument(
        "--adapter-image",
        type=Path,
        action="append",
        default=None,
        help="conditioning image for the bundle's T2I-Adapter (built with build-engine --adapter), resized to the "
        "output size (grayscale kept for 1-channel adapters); repeatable, one per adapter in build order",
    )
    gen.add_argument(
        "--adapter-scale",
        type=float,
        action="append",
        default=None,
        help="adapter_conditioning_scale: one for all, or one per --adapter-image (default: 1.0)",
    )


def _guided_options(gen: argparse.ArgumentParser) -> None:
    """The flags that pick one of the guided text-to-image loops (SD 1.x / 2.x bundles)."""
    gen.add_argument(
        "--panorama",
        action="store_true",
        help="a panorama by MultiDiffusion (StableDiffusionPanoramaPipeline): --size is the whole picture "
        "(default 2048x512), denoised as 512x512 views; the engines' size range must hold it",
    )
    gen.add_argument(
        "--editing-prompt",
        action="append",
        default=None,
        help="SEGA (SemanticStableDiffusionPipeline): a concept to steer the picture towards; repeatable",
    )
    gen.add_argument(
        "--edit-guidance-scale", type=float, default=None, help="SEGA's edit guidance scale (default: 5)"
    )
    gen.add_argument(
        "--safety-preset",
        choices=("weak", "medium", "strong", "max"),
        default=None,
        help="safe latent diffusion (StableDiffusionPipelineSafe) with diffusers' SafetyConfig preset",
    )
    gen.add_argument(
        "--source-prompt",
        default=None,
        help="DiffEdit (StableDiffusionDiffEditPipeline) with --image: what the picture shows now; PROMPT is what "
        "it should show, and the region where the two disagree is repainted (--strength: the inversion's depth, "
        "default 0.8; the mask is saved beside the output as NAME-mask.png)",
    )


def _bench_options(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("bundle", help="engine bundle folder")
    bench.add_argument("--steps", type=int, default=30, help="denoising steps per generation (default: 30)")
    bench.add_argument("--runs", type=int, default=3, help="timed generations (default: 3)")
    bench.add_argument(
        "--warmup", type=int, default=1, help="untimed generations after the cold one (default: 1)"
    )
    bench.add_argument("--size", type=parse_size, default=None, help="WxH in pixels (default: the model's)")
    bench.add_argument("--batch", type=int, default=1, help="prompts (images) per generation (default: 1)")
    bench.add_argument("--scheduler", default=None, help="scheduler class or alias (default: the bundle's)")
    bench.add_argument(
        "--provider", default="auto", help="auto, cpu, openvino, cuda or tensorrt (default: auto)"
    )
    _static_shapes_option(bench)
    bench.add_argument(
        "--prompt",
        default=None,
        help=f"the prompt (default: {DEFAULT_PROMPT!r}, or words of the bundle's own vocabulary when those are not)",
    )
    bench.add_argument(
        "--compare-diffusers",
        metavar="MODEL_DIR",
        help="also time diffusers on this model folder (the one the bundle was built from), in a process "
        "of its own, runs alternating",
    )
    bench.add_argument(
        "--diffusers-dtype",
        choices=("auto", "float32", "float16", "bfloat16"),
        default="auto",
        help="diffusers' torch_dtype for --compare-diffusers; auto: float16 when the bundle's engines are fp16, "
        "else float32 (on a CPU, bfloat16 is diffusers' fastest setting)",
    )
    bench.add_argument(
        "--json", type=Path, metavar="FILE", help="write every figure, the machine and settings"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    return run(f"sdrt {args.command}", lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    from sdrt.runtime.bundle.bundle import open_bundle

    if getattr(args, "static_shapes", False):
        from sdrt.runtime.engines.openvino.engine import STATIC_ENV

        os.environ[STATIC_ENV] = "1"  # read by each OpenVINO engine as it loads

    if args.command == "generate":
        if args.num_images < 1:
            raise InputError("--num-images must be at least 1")
        paths = generate(
            bundle=args.bundle,
            prompt=args.prompt,
            negative_prompt=args.negative_prompt,
            prompt_syntax=args.prompt_syntax,
            cache_interval=args.cache_interval,
            eta=args.eta,
            steps=args.steps,
            guidance=args.guidance,
            scheduler=args.scheduler,
            seed=args.seed,
            size=args.size,
            num_images=args.num_images,
            provider=args.provider,
            output=args.output,
            progress=not args.no_progress,
            loras=args.lora,
            class_labels=args.class_label,
            refiner=Refiner(args.refiner, args.refiner_start),
            inputs=image_inputs(args),
        )
        print("\n".join(str(path) for path in paths))
    elif args.command == "serve":
        return serve(args)
    elif args.command == "inspect":
        from .cache_verify import verify_caches
        from .inspect import describe_bundle, verify_bundle

        bundle = open_bundle(args.bundle)
        print(describe_bundle(bundle))
        if args.verify:
            print(verify_bundle(bundle))
            print("\n".join(verify_caches(bundle)))
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
            diffusers_dtype=args.diffusers_dtype,
            json_path=args.json,
        )
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
