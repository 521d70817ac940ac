"""``build-engine MODEL_DIR -o engines/NAME``: parse the options, call ``export_pipeline``, print a summary."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

from sdrt.export.options import BuildOptions
from sdrt.runtime.backends import backend_names
from sdrt.runtime.components import COMPONENTS

from . import run
from .format import human_bytes


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-engine",
        description="Export a diffusers model folder or a single-file checkpoint to a validated engine bundle "
        "(ONNX + ORT graphs, OpenVINO IR or TensorRT plans).",
    )
    p.add_argument(
        "model_dir",
        help="diffusers model folder (with model_index.json), or a single-file checkpoint (.safetensors) in the "
        "original layout",
    )
    p.add_argument("-o", "--output", required=True, help="bundle folder to write, e.g. engines/NAME")
    p.add_argument(
        "--backend",
        choices=backend_names(build=True),
        default="ort",
        help="engines to build: ort (ONNX Runtime graphs for --device), tensorrt (plans), openvino (IR), "
        "onnx (the ONNX graphs only), or any provider name of sdrt.runtime.backends (default: ort)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16", "auto"),
        default=None,
        help="fp32 or fp16 (default: fp16 for tensorrt or --device cuda, else fp32); with --backend openvino "
        "its inference precision: fp32, bf16 or auto, bf16 where the CPU has it (default: auto)",
    )
    p.add_argument(
        "--vae-fp32", action="store_true", help="keep the VAE in fp32 in an fp16 build (SDXL's VAE overflows)"
    )
    _size_options(p.add_argument_group("sizes (image pixels) and batch"))
    p.add_argument(
        "--components",
        nargs="+",
        choices=sorted({c.name for c in COMPONENTS}),
        help="build only these (others kept if unchanged; controlnet: every ControlNet)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="ONNX Runtime provider the ort graphs are built for (cuda: fused fp16 graphs, buildable without "
        "a GPU), and torch's export device where torch can use it (else the CPU)",
    )
    _model_options(p)
    _conditioning_options(p)
    _part_options(p)
    _deepcache_option(p)
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    p.add_argument(
        "--no-validate", dest="validate", action="store_false", help="skip the ORT-vs-torch validation gate"
    )
    p.add_argument("--force", action="store_true", help="rebuild every component even if unchanged")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    _tensorrt_options(p.add_argument_group("TensorRT (--backend tensorrt)"))
    return p


def _deepcache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--deepcache",
        type=int,
        nargs="?",
        const=0,
        metavar="BRANCH",
        help="also export the UNet split for step caching (DeepCache): unet_deepcache_full and "
        "unet_deepcache_shallow, so pipelines take cache_interval=N (sdrt generate --cache-interval N); BRANCH "
        "as DeepCache's cache_branch_id (default 0: the shallowest, fastest)",
    )


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="DIR|NAME",
        help="with a single-file checkpoint: the diffusers folder of its model (configs, tokenizer, scheduler; "
        "no weights needed), or a configuration sdrt ships: sd15, sd2 (768 px v-prediction), sd2-base, sdxl; "
        "default: the one diffusers infers (from the Hugging Face cache, else sdrt's for SD 1.x, 2.x, SDXL)",
    )
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept a .ckpt/.pt checkpoint: a pickle, which can run code when loaded (trusted files only)",
    )
    p.add_argument(
        "--clip-skip",
        type=int,
        help="also export the text encoders' hidden states diffusers' clip_skip=N takes (pass it to the calls)",
    )
    p.add_argument(
        "--prompt-chunks",
        type=int,
        help="the UNet takes prompts of up to N chunks of 75 tokens (77 x N embeddings: A1111's long "
        "prompts, prompt_syntax='a1111' / --prompt-syntax a1111); default 1, diffusers' fixed 77",
    )
    p.add_argument(
        "--textual-inversion",
        action="append",
        dest="textual_inversions",
        metavar="FILE[:TOKEN]",
        help="add a textual-inversion embedding (A1111 .pt/.safetensors or diffusers learned_embeds), "
        "its token taken from the file unless given; repeatable",
    )
    p.add_argument(
        "--lora",
        action="append",
        dest="loras",
        metavar="FILE[:SCALE]",
        help="fuse a LoRA (diffusers/PEFT or A1111/kohya .safetensors) into the UNet and text encoders at "
        "SCALE (default 1); repeatable, scales as diffusers' set_adapters",
    )


def _conditioning_options(p: argparse.ArgumentParser) -> None:
    """The models that condition the UNet, each exported as its own engine beside it."""
    p.add_argument(
        "--controlnet",
        action="append",
        dest="controlnets",
        metavar="DIR[:NAME]",
        help="export a diffusers ControlNetModel folder as the component controlnet (then controlnet_1...) "
        "or controlnet_NAME, and a UNet that takes its residuals; repeatable",
    )
    p.add_argument(
        "--adapter",
        action="append",
        dest="adapters",
        metavar="DIR[:NAME]",
        help="export a diffusers T2IAdapter folder as the component adapter (then adapter_1...) or adapter_NAME, "
        "and a UNet that takes its feature maps; repeatable (several: MultiAdapter)",
    )
    _ip_adapter_options(p)


def _ip_adapter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ip-adapter",
        metavar="FILE",
        help="export an IP-Adapter (.safetensors, diffusers' load_ip_adapter layout): the UNet takes image tokens "
        "(pipelines then take ip_adapter_image and set_ip_adapter_scale), its projection as image_projection; "
        "needs --image-encoder",
    )
    p.add_argument(
        "--image-encoder",
        metavar="DIR",
        help="the CLIPVisionModelWithProjection folder of --ip-adapter, exported as image_encoder",
    )


def _part_options(p: argparse.ArgumentParser) -> None:
    """Parts taken from other folders than the model's."""
    p.add_argument(
        "--vae",
        help="another VAE to export instead of the model's own: an AutoencoderKL folder (or a model folder "
        "with one), e.g. sd-vae-ft-mse, or a tiny AutoencoderTiny folder (TAESD, TAESDXL)",
    )
    p.add_argument(
        "--preview-vae",
        help="also export a tiny VAE's decoder (an AutoencoderTiny folder: TAESD, TAESDXL) as vae_preview_decoder, "
        "for cheap previews of the latents (pipe.vae.decode_preview)",
    )
    p.add_argument(
        "--safety-checker",
        metavar="DIR",
        help="export diffusers' StableDiffusionSafetyChecker (a folder with its config, weights and CLIP's "
        "preprocessor_config.json, or a model folder with safety_checker/ and feature_extractor/): the SD "
        "pipelines then black out flagged images and report nsfw_content_detected; default: the model folder's own",
    )


def _size_options(size: argparse._ArgumentGroup) -> None:
    size.add_argument("--height", type=int, help="one image height (use with --width)")
    size.add_argument("--width", type=int, help="one image width")
    size.add_argument("--min-size", type=int, help="smallest height/width of a dynamic range")
    size.add_argument("--max-size", type=int, help="largest height/width of a dynamic range")
    size.add_argument("--batch", type=int, default=1, help="smallest prompt batch (default 1)")
    size.add_argument("--max-batch", type=int, help="largest prompt batch (default 4; --batch when --static)")
    size.add_argument("--static", action="store_true", help="fixed shapes (one size, one batch)")


def _tensorrt_options(trt: argparse._ArgumentGroup) -> None:
    trt.add_argument(
        "--trt-module",
        choices=("tensorrt", "tensorrt_rtx"),
        help="TensorRT flavour (default: whichever is installed)",
    )
    trt.add_argument("--target-compute", nargs="+", help="compute capabilities to build for, e.g. 8.6 8.9")
    trt.add_argument(
        "--optimization-level", type=int, default=3, help="builder optimization level 0-5 (default 3)"
    )
    trt.add_argument("--workspace-gb", type=float, help="builder workspace limit in GB")
    trt.add_argument("--refittable", action="store_true", help="build refittable plans")


def default_precision(backend: str, device: str) -> str:
    """The backend's default precision (fp16 on a GPU, OpenVINO's auto, else fp32)."""
    from sdrt.export.engines import export_backend

    return export_backend(backend, device).precision_default(device)


def format_summary(report) -> str:
    rows = [("component", "status", "size", "validation", "time")]
    for c in report.components:
        rows.append((c.name, c.status, human_bytes(c.bytes), c.figure, f"{c.seconds:.1f} s"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    return run("build-engine", lambda: _build(args))


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The build's options from the command line: each ``BuildOptions`` field from the option of the same
    ``dest``; the precision's default, the progress bar and the TensorRT group worked out here."""
    named = {f.name: getattr(args, f.name) for f in dataclasses.fields(BuildOptions) if hasattr(args, f.name)}
    trt_options = {
        "trt_module": args.trt_module,
        "target_compute": args.target_compute,
        "optimization_level": args.optimization_level,
        "workspace_gb": args.workspace_gb,
        "refittable": args.refittable,
    }
    named["precision"] = args.precision or default_precision(args.backend, args.device)
    named["progress"] = not args.quiet
    named["trt_options"] = trt_options
    return BuildOptions(**named)


def _build(args: argparse.Namespace) -> int:
    from sdrt.export.build import export_pipeline

    options = build_options(args)
    started = time.perf_counter()
    report = export_pipeline(args.model_dir, args.output, options)
    print(format_summary(report))
    print(
        f"bundle {report.bundle_dir} ({report.manifest.model_type}, {options.precision}, backend "
        f"{options.backend}) written in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
