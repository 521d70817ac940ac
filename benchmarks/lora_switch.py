"""Switching LoRA at run time against rebuilding the bundle with the LoRA merged (issue 12).

    python -m benchmarks.lora_switch MODEL_DIR WORK_DIR [--rank 16] [--size 256] [--steps 4]

MODEL_DIR: a diffusers SD 1.x folder (benchmarks/make_sd15_random.py). In WORK_DIR: two random LoRAs
made with PEFT on the UNet's attention (to_q, to_k, to_v, to_out.0) and the text encoder's (q, k, v,
out_proj), saved as diffusers saves them; the base bundle and the bundle with LoRA A merged, each built by
``build-engine`` in a child process (timed); then, in a fresh child process on the base bundle: the load,
a first image, ``load_lora_weights(A)``, ``load_lora_weights(B)`` (the switch), ``set_adapters`` of both,
``unload_lora_weights``, each timed with the process's RSS after it, and the run-time A image against the
merged bundle's (PSNR).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from sdrt.runtime import StableDiffusionPipeline

    base_dir, merged_dir, lora_a, lora_b, size, steps = sys.argv[1:7]
    size, steps = int(size), int(steps)

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    def image(pipe):
        latents = np.random.RandomState(0).randn(1, 4, size // 8, size // 8).astype(np.float32)
        out = pipe("a photo of a cat", latents=latents, num_inference_steps=steps, height=size, width=size,
                   output_type="np")
        return np.asarray(out.images, dtype=np.float64)

    rows = {}
    def timed(name, fn):
        started = time.perf_counter()
        value = fn()
        rows[name] = {"s": round(time.perf_counter() - started, 3), "rss_mib": round(rss_mib())}
        return value

    pipe = timed("load the base bundle", lambda: StableDiffusionPipeline.from_pretrained(base_dir, provider="cpu"))
    pipe.set_progress_bar_config(disable=True)
    base = timed("first image (base)", lambda: image(pipe))
    timed("image (base, warm)", lambda: image(pipe))
    timed("load_lora_weights(A)", lambda: pipe.load_lora_weights(lora_a, adapter_name="a"))
    runtime_a = timed("image (A)", lambda: image(pipe))
    timed("load_lora_weights(B): switch A -> B", lambda: pipe.load_lora_weights(lora_b, adapter_name="b"))
    timed("image (B)", lambda: image(pipe))
    timed("set_adapters([A, B], [0.7, 0.3])", lambda: pipe.set_adapters(["a", "b"], [0.7, 0.3]))
    timed("set_adapters(A): switch back", lambda: pipe.set_adapters("a"))
    again_a = image(pipe)
    timed("unload_lora_weights", lambda: pipe.unload_lora_weights())
    unloaded = image(pipe)
    del pipe
    merged = StableDiffusionPipeline.from_pretrained(merged_dir, provider="cpu")
    merged.set_progress_bar_config(disable=True)
    merged_a = image(merged)
    psnr = lambda a, b: float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-20)))
    print(json.dumps({
        "rows": rows,
        "psnr run-time A vs merged bundle A (dB)": round(psnr(runtime_a, merged_a), 1),
        "A again equals A (bit for bit)": bool(np.array_equal(runtime_a, again_a)),
        "unloaded equals base (bit for bit)": bool(np.array_equal(unloaded, base)),
    }))
    """
)


def make_loras(model_dir: Path, work: Path, rank: int) -> list[Path]:
    import diffusers
    import torch
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(model_dir)
    pipe.unet.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]),
        pipe.text_encoder,
    )
    files = []
    for seed, name in ((1, "lora-a"), (2, "lora-b")):
        generator = torch.Generator().manual_seed(seed)
        layers = {
            f"{part}_lora_layers": {
                k: torch.randn(v.shape, generator=generator) * 0.02
                for k, v in get_peft_model_state_dict(getattr(pipe, part)).items()
            }
            for part in ("unet", "text_encoder")
        }
        diffusers.StableDiffusionPipeline.save_lora_weights(work / name, **layers)
        files.append(work / name / "pytorch_lora_weights.safetensors")
    return files


def build(model_dir: Path, out: Path, size: int, *extra: str) -> float:
    command = [
        "build-engine",
        str(model_dir),
        "-o",
        str(out),
        "--backend",
        "ort",
        "--precision",
        "fp32",
        "--height",
        str(size),
        "--width",
        str(size),
        "--max-batch",
        "1",
        "--no-validate",
        "--force",
        "--components",
        "text_encoder",
        "unet",
        "vae_decoder",
        *extra,
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--skip-build", action="store_true", help="reuse WORK_DIR's LoRAs and bundles")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base, merged = args.work / "bundle-base", args.work / "bundle-merged-a"
    if args.skip_build:
        lora_a, lora_b = (args.work / n / "pytorch_lora_weights.safetensors" for n in ("lora-a", "lora-b"))
        figures = {}
    else:
        lora_a, lora_b = make_loras(args.model_dir, args.work, args.rank)
        figures = {
            "build-engine (base bundle), s": build(args.model_dir, base, args.size),
            "build-engine --lora A (merged), s": build(
                args.model_dir, merged, args.size, "--lora", str(lora_a)
            ),
        }
    figures["LoRA file, MB"] = round(lora_a.stat().st_size / 1e6, 1)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(base),
            str(merged),
            str(lora_a),
            str(lora_b),
            str(args.size),
            str(args.steps),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    figures.update(json.loads(child.stdout.strip().splitlines()[-1]))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
