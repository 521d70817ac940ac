"""The GPU check (issues 8 and 17), in one call on the lent GPU machine: build, check against diffusers,
time.

    bash benchmarks/h100.sh                      # on the device (benchmarks/h100_stage.sh says how)
    python -m benchmarks.h100 --out DIR          # the same, wheels already importable
    python -m benchmarks.h100 --cpu-dry-run --out DIR   # here: the same code path on a tiny model, CPU

Stages, each adding its figures to DIR/h100.json as soon as it ends (a timeout keeps what was done):
  env       versions, GPU, ONNX Runtime providers
  model     the SD1.5-sized random-weight pipeline folder (benchmarks/make_sd15_random.py)
  build     build-engine --backend ort --device cuda, fp16, static 512x512 batch 1 (text_encoder, unet,
            vae_decoder): fused operator and Cast/Transpose counts, the validation gates' status
  parity    sdrt (provider cuda) against diffusers fp16 on the GPU: same weights, initial latents,
            scheduler (the folder's PNDM) and prompt, 50 steps: image PSNR (gate >= 30 dB)
  sync      the sdrt denoising loop under cupyx.allow_synchronize(False): no host synchronisation
  timing    UNet ms/call (batch 2 = one image with guidance), UNet with ORT's CUDA graph, VAE decoder ms,
            text encoder ms, whole 50-step 512x512 image: sdrt, diffusers eager, diffusers torch.compile
            (UNet compiled, inductor default), all in this process on this GPU; for sdrt also the
            denoising loop alone and what a step costs beyond its UNet call
  pytest    pytest -m cupy tests/schedulers tests/runtime/engines (the CuPy scheduler parity tests)
  bench     sdrt bench on the bundle (its CUDA-event stage clock), DIR/bench.json
Then one table. With --cpu-dry-run the model is tests/models.py's tiny SD1 at 64x64, the bundle is
still built with --device cuda (that build needs no GPU), sdrt runs on provider "cpu" (its plain ONNX
graphs), diffusers in fp32 on the CPU, torch.compile with the "eager" backend, 3 steps: every line of
the device path except the CUDA-only calls runs, so the one device call does not fail on a typo.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .bench import stage_bench
from .checks import PARITY_MIN_DB, stage_parity, stage_pytest, stage_sync
from .prepare import stage_build, stage_env, stage_model
from .report import Report, table
from .shared import Setup
from .timing import stage_timing

__all__ = ["PARITY_MIN_DB", "main"]


def main(argv: list[str] | None = None) -> int:
    # run as a package, argparse would name the program "__main__.py"
    parser = argparse.ArgumentParser(prog="python -m benchmarks.h100", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=os.environ.get("OUT", "h100-out"), help="where h100.json goes ($OUT)"
    )
    parser.add_argument(
        "--work", default="/tmp/sdrt-h100", help="model folder and bundle (reused when there)"
    )
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny model, CPU providers (see above)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 50; dry run 3)")
    parser.add_argument("--iters", type=int, help="timed calls per figure (default 30; dry run 3)")
    parser.add_argument("--skip-compile", action="store_true", help="no torch.compile row")
    parser.add_argument(
        "--stages",
        nargs="+",
        default=["env", "model", "build", "parity", "sync", "timing", "pytest", "bench"],
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    setup = Setup(args)
    report = Report(Path(args.out), setup.dry)
    functions = {
        "env": stage_env,
        "model": stage_model,
        "build": stage_build,
        "parity": stage_parity,
        "sync": stage_sync,
        "pytest": stage_pytest,
        "timing": stage_timing,
        "bench": stage_bench,
    }
    for name in args.stages:
        result = report.stage(name, lambda fn=functions[name]: fn(setup))
        if name in ("env", "model", "build") and result["status"] == "error" and not result.get("continue"):
            break  # nothing after can run
    text = table(report.data)
    (Path(args.out) / "h100.txt").write_text(text + "\n")
    print(text)
    return 0 if all(st["status"] in ("ok", "skipped") for st in report.data["stages"].values()) else 1
