"""The checks: parity with diffusers, no host synchronisation in the loop, the CuPy-marked tests."""

from __future__ import annotations

import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from .measures import psnr01
from .pipelines import PROMPT, diffusers_image, load_sdrt, sdrt_image
from .shared import Setup

PARITY_MIN_DB = 30.0


def stage_parity(s: Setup) -> dict[str, Any]:
    ours = sdrt_image(s, s.steps)
    theirs = diffusers_image(s, s.steps)
    finite = bool(np.isfinite(ours).all() and np.isfinite(theirs).all())
    value = psnr01(ours, theirs) if finite else float("nan")
    result = {
        "psnr_db": round(value, 2),
        "threshold_db": PARITY_MIN_DB,
        "steps": s.steps,
        "finite": finite,
        "image_mean": [float(np.nanmean(ours)), float(np.nanmean(theirs))],
    }
    if not value >= PARITY_MIN_DB:
        result["status"] = "error"
        result["error"] = f"sdrt vs diffusers PSNR {value:.2f} dB < {PARITY_MIN_DB} dB"
    return result


def stage_sync(s: Setup) -> dict[str, Any]:
    if s.dry:
        return {"status": "skipped", "reason": "needs CuPy and a GPU"}
    import cupy
    import cupyx

    pipe = load_sdrt(s)
    embeds, negative = pipe.encode_prompt(PROMPT, 1, True)
    latents = cupy.asarray(s.latents())
    cupy.cuda.Device().synchronize()
    try:
        with cupyx.allow_synchronize(False):
            pipe(
                prompt_embeds=embeds,
                negative_prompt_embeds=negative,
                num_inference_steps=s.steps,
                latents=latents,
                output_type="latent",
            )
    except Exception as err:
        frames = traceback.extract_tb(err.__traceback__)
        where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[-4:]]
        return {"status": "error", "error": f"{type(err).__name__}: {err}", "where": where}
    return {"host_syncs_in_loop": 0}


def stage_pytest(s: Setup) -> dict[str, Any]:
    import importlib.util

    targets = ["tests/schedulers", "tests/runtime/engines"]
    command = [sys.executable, "-m", "pytest", "-m", "cupy", "-q", "-p", "no:cacheprovider", "--maxfail=25"]
    if importlib.util.find_spec("xdist") is not None:  # CuPy compiles each kernel once: spread the tests
        command += ["-n", "8"]
    try:
        done = subprocess.run(
            [*command, *targets], capture_output=True, text=True, timeout=150 if not s.dry else 600
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return {"status": "error", "error": "pytest timed out", "tail": out.strip().splitlines()[-5:]}
    lines = (done.stdout + done.stderr).strip().splitlines()
    if "No module named pytest" in done.stderr:
        return {"status": "skipped", "reason": "pytest is not installed (carry its wheels with .device/w)"}
    status = "ok" if done.returncode in (0, 5) else "error"  # 5: nothing collected
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))][:30]
    return {"status": status, "returncode": done.returncode, "summary": lines[-3:], "failed": failed}
