"""The stages every later one needs: env, model and build (main stops at the first that fails)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from .shared import Setup

COMPONENTS = ["text_encoder", "unet", "vae_decoder"]


def stage_env(s: Setup) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    if hasattr(ort, "preload_dlls") and not s.dry:
        ort.preload_dlls()  # finds torch's CUDA libraries (device/README.md)
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import cupy

        info["cupy"] = cupy.__version__
    except ImportError:
        info["cupy"] = None
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        info["diffusers"] = None
    if not s.dry and "CUDAExecutionProvider" not in info["providers"]:
        info["status"] = "error"
        info["error"] = (
            "onnxruntime has no CUDAExecutionProvider: the carried onnxruntime-gpu is not first on the path"
        )
    return info


def stage_model(s: Setup) -> dict[str, Any]:
    if (s.model_dir / "model_index.json").is_file():
        return {"path": str(s.model_dir), "reused": True}
    if s.dry:
        from tests.models import MAKERS

        MAKERS["sd1"](s.model_dir)
    else:
        from benchmarks.make_sd15_random import make_sd15_random

        make_sd15_random(s.model_dir, seed=0)
    return {"path": str(s.model_dir), "reused": False}


def stage_build(s: Setup) -> dict[str, Any]:
    from sdrt.cli.build_engine import main as build_engine

    argv = [str(s.model_dir), "-o", str(s.bundle), "--backend", "ort", "--device", "cuda"]
    argv += [
        "--precision",
        "fp16",
        "--static",
        "--height",
        str(s.size),
        "--width",
        str(s.size),
        "--batch",
        "1",
    ]
    argv += ["--components", *COMPONENTS, "-q"]
    code = build_engine(argv)
    result: dict[str, Any] = {}
    if code != 0:
        # a failed gate must not cost the device run its other figures: build again without it, say so
        result.update(status="error", error=f"build-engine exited with {code}; rebuilt with --no-validate")
        result["continue"] = build_engine([*argv, "--no-validate"]) == 0
        if not result["continue"]:
            return result
    manifest = json.loads((s.bundle / "manifest.json").read_text())
    for name in COMPONENTS:
        record = manifest["components"][name]
        ort_record = record["ort"]
        validation = ort_record.get("validation") or {}
        result[name] = {
            "fused": ort_record.get("fused"),
            "casts": ort_record.get("casts"),
            "transposes": ort_record.get("transposes"),
            "nodes": ort_record.get("nodes"),
            "export_counts": ort_record.get("export_counts"),
            "gate": validation.get("status"),
            "gate_value": validation.get("value"),
            "cpu_checks": {k: v.get("value") for k, v in (validation.get("cpu_checks") or {}).items()},
            "onnx_validation": (record.get("validation") or {}).get("value"),
            "seconds": record.get("export_seconds"),
        }
    result["unet_session_graph"] = session_graph_counts(
        s, s.bundle / manifest["components"]["unet"]["ort"]["file"]
    )
    if not s.dry and any(result[n]["gate"] != "passed" for n in COMPONENTS) and "error" not in result:
        result["status"] = "error"
        result["error"] = "a fused graph's validation gate did not pass on the CUDA provider"
        result["continue"] = True  # the bundle runs: its figures still say what the GPU does
    return result


def session_graph_counts(s: Setup, path: Path) -> dict[str, Any]:
    """Cast/Transpose/node counts of the graph ONNX Runtime's CUDA session runs (after its own optimizer)."""
    if s.dry:
        return {"status": "skipped: needs the CUDA provider"}
    from collections import Counter

    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    optimized = s.work / "unet.session.onnx"
    options.optimized_model_filepath = str(optimized)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", "unet.session.data"
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    ort.InferenceSession(str(path), options, providers=["CUDAExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(str(optimized), load_external_data=False).graph.node)
    for leftover in s.work.glob("unet.session.*"):
        leftover.unlink()
    return {"casts": ops["Cast"], "transposes": ops["Transpose"], "nodes": sum(ops.values())}
