"""What ``sdrt bench`` reports besides the timings: the machine, the versions, the table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# (JSON stage key, table label); the UNet and loop rows are labelled per step
_ROWS = (
    ("text_encoder", "text encoder"),
    ("unet_per_step", "UNet per step"),
    ("unet_total", "UNet x {calls} calls"),
    ("loop_overhead_per_step", "scheduler + loop per step"),
    ("vae_decode", "VAE decode"),
    ("pipeline", "whole pipeline"),
)
_DISTRIBUTIONS = {
    "sdrt": ("sdrt", "onnxruntime", "onnxruntime-gpu", "numpy", "tensorrt", "tensorrt-rtx"),
    "torch": ("diffusers", "torch", "transformers"),
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(*, gpu: bool) -> dict[str, Any]:
    """CPU model, cores (and those this process may use), memory, load; GPU name and driver when used."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = os.getloadavg()[0]
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        info["memory_gib"] = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    if gpu:
        import cupy

        runtime = cupy.cuda.runtime
        properties = runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = properties["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["gpu_driver"] = _cuda_version(runtime.driverGetVersion())
    return info


def _cuda_version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def versions(*, torch: bool) -> dict[str, str]:
    """Installed versions (from package metadata, importing nothing); torch's side only when it ran."""
    names = _DISTRIBUTIONS["sdrt"] + (_DISTRIBUTIONS["torch"] if torch else ())
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import cupy

        found["cupy"] = cupy.__version__
        found["cuda_runtime"] = _cuda_version(cupy.cuda.runtime.runtimeGetVersion())
    except Exception:  # no CuPy, or no CUDA libraries: nothing to report
        pass
    return found


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000.0
    return f"{ms:.0f}" if abs(ms) >= 1000 else f"{ms:.1f}" if abs(ms) >= 10 else f"{ms:.2f}"


def _stat_cells(stage: dict[str, float] | None) -> list[str]:
    if not stage:
        return ["-", "-", "-"]
    return [_ms(stage["median_s"]), _ms(stage["min_s"]), _ms(stage["max_s"])]


def format_table(result: dict[str, Any]) -> str:
    """The bench's table: per stage median/min/max in ms for sdrt (and diffusers, with the speed-up)."""
    ref = result.get("diffusers")
    header = ["stage (ms)", "median", "min", "max"]
    if ref:
        header += ["diffusers", "min", "max", "speed-up"]
    lines = _title(result)
    lines.append(_align([header, *_stage_rows(result), *_totals_rows(result)]))
    if ref:
        lines.append(
            "speed-up = diffusers median / sdrt median (above 1: sdrt is faster); diffusers ran in a process "
            "of its own, so its peak host RSS is its own"
            if ref.get("process") == "separate"
            else "speed-up = diffusers median / sdrt median (above 1: sdrt is faster); peak host RSS of "
            "diffusers is the process's peak with both pipelines loaded"
        )
    return "\n".join(lines)


def _title(result: dict[str, Any]) -> list[str]:
    """What ran: the bundle and settings, and the diffusers pipeline compared with, if any."""
    s, sdrt = result["settings"], result["sdrt"]
    ref = result.get("diffusers")
    size = "fixed size" if s["height"] is None else f"{s['width']}x{s['height']}"
    lines = [
        f"sdrt bench {s['bundle']} ({s['model_type']}, {sdrt['provider']}, {sdrt['precision']}): "
        f"{s['steps']} steps, {size}, batch {s['batch']}, {sdrt['scheduler']}, "
        f"{s['runs']} timed runs after a cold run and {s['warmup']} warm-up",
    ]
    if ref:
        lines.append(
            f"compared with diffusers {ref['pipeline']} on {s['compare_diffusers']} ({ref['device']}, "
            f"{ref['dtype']}, {ref['torch_threads']} torch threads), {_where(ref)}runs alternating"
        )
    return lines


def _where(ref: dict[str, Any]) -> str:
    if ref.get("process") == "separate":
        return f"in a process of its own (pid {ref['pid']}, not sdrt's), "
    return "in sdrt's process, "


def _stage_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per timed stage: median, min, max (and diffusers' with the speed-up)."""
    s, sdrt = result["settings"], result["sdrt"]
    ref = result.get("diffusers")
    rows = []
    for key, label in _ROWS:
        if key not in sdrt["stages"]:
            continue
        calls = sdrt["unet_calls_per_run"]
        if calls != s["steps"]:  # schedulers with extra UNet calls (PNDM, Heun...): per call, not per step
            label = label.replace("UNet per step", "UNet per call")
        row = [label.format(calls=calls), *_stat_cells(sdrt["stages"][key])]
        if ref:
            ratio = result["ratios"].get(key)
            row += [*_stat_cells(ref["stages"].get(key)), "-" if ratio is None else f"{ratio:.2f}x"]
        rows.append(row)
    return rows


def _totals_rows(result: dict[str, Any]) -> list[list[str]]:
    """The one-value rows: images/s, the first run, peak memory."""
    sdrt, ref = result["sdrt"], result.get("diffusers")
    rows = [
        _single(
            "images/s", sdrt["images_per_s"], ref and ref["images_per_s"], "{:.3f}", result, "images_per_s"
        ),
        _single(
            "first run (load + 1st image)",
            sdrt["cold"]["cold_s"] * 1000,
            ref and ref["cold"]["cold_s"] * 1000,
            "{:.0f}",
            result,
            "cold",
        ),
        _single(
            "peak host RSS (MiB)",
            sdrt["memory"]["peak_rss_mib"],
            ref and ref["memory"]["peak_rss_mib"],
            "{:.0f}",
            result,
            None,
        ),
    ]
    if "peak_device_mib" in sdrt["memory"]:
        device_ref = ref and ref["memory"].get("peak_device_mib")
        rows.append(
            _single(
                "peak device memory (MiB)",
                sdrt["memory"]["peak_device_mib"],
                device_ref,
                "{:.0f}",
                result,
                None,
            )
        )
    return rows


def _single(
    label: str, value: float, ref_value: float | None, spec: str, result: dict, ratio_key: str | None
) -> list[str]:
    row = [label, spec.format(value), "", ""]
    if "diffusers" in result:
        ratio = result.get("ratios", {}).get(ratio_key) if ratio_key else None
        row += [
            "-" if ref_value is None else spec.format(ref_value),
            "",
            "",
            "-" if ratio is None else f"{ratio:.2f}x",
        ]
    return row


def _align(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def write_json(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """The whole result, indented, with a trailing newline."""
    Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
