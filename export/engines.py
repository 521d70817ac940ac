"""Engine stage of a bundle: ORT-optimized graphs (``--backend ort``) or TensorRT plans.

``export_pipeline`` runs it inside its temporary bundle folder; ``build_engines`` can also be run on
an existing bundle to add engines (ORT graphs are written through a temporary name and the manifest
last, so a reader sees either the old or the new state).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.manifest import load_manifest, write_manifest

from .errors import OptionError

log = logging.getLogger(__name__)

ENGINE_BACKENDS = ("onnx", "ort", "tensorrt")


def ort_stage(
    bundle_dir: Path,
    name: str,
    record: dict[str, Any],
    *,
    provider: str,
    fp32_graph: Path | None = None,
    cases: list | None = None,
) -> dict[str, Any]:
    """Write ``ort/<name>.onnx`` optimized for ``provider``; validate it when ``cases`` are given and
    the provider is available here. Returns the component's ``ort`` record."""
    from sdrt.export.ort.optimize import optimize_for_ort

    started = time.perf_counter()
    src = bundle_dir / record["onnx"]
    dst = bundle_dir / "ort" / f"{name}.onnx"
    log.info("%s: optimizing for ONNX Runtime (%s)", name, provider)
    result = optimize_for_ort(
        src, dst, component=name, provider=provider, precision=record["precision"], src_fp32=fp32_graph
    )
    result["file"] = f"ort/{name}.onnx"
    result["validation"] = None
    if cases:
        import onnxruntime as ort

        from sdrt.export.onnx.validate import validate_onnx

        wanted = "CUDAExecutionProvider" if provider == "cuda" else "CPUExecutionProvider"
        if wanted in ort.get_available_providers():
            result["validation"] = validate_onnx(
                dst,
                cases,
                component=f"{name} (ort/{provider})",
                precision=record["precision"],
                providers=[wanted],
            )
        else:
            log.warning("%s: %s not available here; the ORT graph is not validated", name, wanted)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def build_engines(
    bundle_dir: str | Path,
    *,
    backend: str,
    components: list[str] | None = None,
    precision: str = "fp16",
    provider: str = "cpu",
    trt_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add engines for ``backend`` (``ort`` or ``tensorrt``) to the bundle; returns the new manifest dict."""
    bundle_dir = Path(bundle_dir)
    manifest = load_manifest(bundle_dir).data
    names = components or list(manifest["components"])
    if backend == "onnx":
        return manifest
    if backend == "ort":
        for name in names:
            record = manifest["components"][name]
            record["ort"] = ort_stage(bundle_dir, name, record, provider=provider)
    elif backend == "tensorrt":
        try:
            from sdrt.export.tensorrt.build import build_trt_plans
        except ImportError as err:
            raise OptionError(
                f"--backend tensorrt needs TensorRT and sdrt's TensorRT builder ({err}); install "
                f"sdrt[tensorrt] (or sdrt[rtx] for TensorRT-RTX), or build with --backend ort"
            ) from err
        options = dict(trt_options or {})
        manifest = build_trt_plans(
            bundle_dir,
            manifest,
            components=names,
            precision=precision,
            trt_module=options.get("trt_module"),
            target_compute=options.get("target_compute"),
            optimization_level=options.get("optimization_level", 3),
            workspace_gb=options.get("workspace_gb"),
            refittable=options.get("refittable", False),
            static=manifest["shapes"].get("static", False),
        )
    else:
        raise OptionError(f"backend {backend!r} is not one of {', '.join(ENGINE_BACKENDS)}")
    write_manifest(bundle_dir, manifest)
    return manifest
