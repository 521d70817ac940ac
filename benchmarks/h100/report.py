"""The figures: written to DIR/h100.json after every stage, and the closing table."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checks import PARITY_MIN_DB

log = logging.getLogger("h100")


class Report:
    """The figures so far, written to ``DIR/h100.json`` after every stage."""

    def __init__(self, out: Path, dry_run: bool) -> None:
        self.path = out / "h100.json"
        self.data: dict[str, Any] = {"dry_run": dry_run, "stages": {}}
        out.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        log.info("stage %s ...", name)
        try:
            result = fn()
            result["status"] = result.get("status", "ok")
        except Exception as err:  # one failed stage must not lose the others' figures
            result = {
                "status": "error",
                "error": f"{type(err).__name__}: {err}",
                "trace": traceback.format_exc(),
            }
            log.error("stage %s failed: %s", name, result["error"])
        result["seconds"] = round(time.perf_counter() - started, 1)
        self.data["stages"][name] = result
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
        log.info("stage %s: %s in %.1f s", name, result["status"], result["seconds"])
        return result


def table(report: dict[str, Any]) -> str:
    stages = report["stages"]
    timing = stages.get("timing", {})
    rows = timing.get("rows", {})
    steps = timing.get("steps", "?")
    size = timing.get("size", "?")
    header = ("", "UNet ms/call", "VAE dec ms", "text enc ms", f"{steps}-step {size}x{size} image ms")
    lines = [header]
    for name, row in rows.items():
        cells = [row.get(k) for k in ("unet_ms", "vae_ms", "text_ms", "image_ms")]
        text = [f"{c:.2f}" if isinstance(c, float) else "-" for c in cells]
        lines.append((name, *text))
    sdrt = rows.get("sdrt", {})
    ratios = []
    for name, row in rows.items():
        if name.startswith("diffusers") and row.get("unet_ms") and sdrt.get("unet_ms"):
            ratios.append(
                f"{name}: UNet x{row['unet_ms'] / sdrt['unet_ms']:.2f}, image "
                f"x{(row.get('image_ms') or float('nan')) / (sdrt.get('image_ms') or float('nan')):.2f}"
            )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    parity = stages.get("parity", {})
    out.append(
        f"parity sdrt vs diffusers: {parity.get('psnr_db')} dB (gate {PARITY_MIN_DB}), {parity.get('status')}"
    )
    for name in ("env", "model", "build", "sync", "pytest"):
        stage = stages.get(name, {})
        out.append(
            f"{name}: {stage.get('status')}"
            + (f" ({stage.get('error') or stage.get('reason')})" if stage.get("status") != "ok" else "")
        )
    build = stages.get("build", {})
    unet = build.get("unet") if isinstance(build, dict) else None
    if unet:
        out.append(
            f"UNet graph: {unet.get('fused')}; {unet.get('casts')} Cast, {unet.get('transposes')} Transpose"
        )
    out.extend(f"ratio sdrt vs {r}" for r in ratios)
    out.extend(_goals(rows))
    bench = stages.get("bench", {})
    out.append(f"bench: {bench.get('status')}" + (f" ({bench.get('error')})" if bench.get("error") else ""))
    return "\n".join(out)


# issue 17's goals: UNet call (batch 2, 64x64 latent), the whole 50-step 512x512 image, host work per step
GOALS = {"unet_ms": 7.3, "image_ms": 400.0, "step_overhead_pct": 1.0}


def _goals(rows: dict[str, Any]) -> list[str]:
    lines = []
    for name, row in rows.items():
        if not name.startswith("sdrt") or "loop_ms" not in row:
            continue
        lines.append(
            f"{name}: denoising loop {row['loop_ms']:.1f} ms, beyond the UNet per step "
            f"{row['step_overhead_ms']:.3f} ms = {row['step_overhead_pct']:.2f}% of the call"
        )
        verdicts = [
            f"{key} {row[key]:.2f} ({'met' if row[key] <= goal else 'missed'}: <= {goal})"
            for key, goal in GOALS.items()
            if isinstance(row.get(key), float)
        ]
        lines.append(f"{name} goals: " + ", ".join(verdicts))
    return lines
