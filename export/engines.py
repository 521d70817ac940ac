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

from sdrt.runtime.bundle.integrity import describe_files
from sdrt.runtime.bundle.manifest import Manifest, read_manifest, write_manifest
from sdrt.runtime.bundle.records import ComponentRecord, OrtRecord
from sdrt.runtime.components import component_class

from .errors import OptionError

log = logging.getLogger(__name__)

ENGINE_BACKENDS = ("onnx", "ort", "tensorrt", "openvino")


def ort_stage(
    bundle_dir: Path,
    record: ComponentRecord,
    *,
    provider: str,
    fp32_graph: Path | None = None,
    cases: list | None = None,
) -> OrtRecord:
    """Write ``ort/<name>.onnx`` optimized for ``provider``; validate it when ``cases`` are given and
    the provider is available here."""
    import onnxruntime as ort

    from .onnx.validate import validate_onnx
    from .ort.optimize import optimize_for_ort

    started = time.perf_counter()
    file = f"ort/{record.name}.onnx"
    log.info("%s: optimizing for ONNX Runtime (%s)", record.name, provider)
    details = optimize_for_ort(
        bundle_dir / record.onnx,
        bundle_dir / file,
        component=component_class(record.name, record.class_name),
        provider=provider,
        precision=record.precision,
        src_fp32=fp32_graph,
    )
    result = OrtRecord(file=file, provider=details.pop("provider"), details=details)
    wanted = "CUDAExecutionProvider" if provider == "cuda" else "CPUExecutionProvider"
    if cases and wanted in ort.get_available_providers():
        result.validation = validate_onnx(
            bundle_dir / file,
            cases,
            component=f"{record.name} (ort/{provider})",
            precision=record.precision,
            providers=[wanted],
        )
    elif cases:
        log.warning("%s: %s not available here; the ORT graph is not validated", record.name, wanted)
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def build_engines(
    bundle_dir: str | Path,
    *,
    backend: str,
    components: list[str] | None = None,
    precision: str = "fp16",
    provider: str = "cpu",
    trt_options: dict[str, Any] | None = None,
) -> Manifest:
    """Add engines for ``backend`` (``ort``, ``tensorrt`` or ``openvino``, whose ``precision`` is fp32, bf16
    or auto) to the bundle; returns the new manifest."""
    if backend not in ENGINE_BACKENDS:
        raise OptionError(f"backend {backend!r} is not one of {', '.join(ENGINE_BACKENDS)}")
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    names = components or list(manifest.components)
    if backend == "onnx":
        return manifest
    if backend == "ort":
        for name in names:
            record = manifest.components[name]
            record.ort = ort_stage(bundle_dir, record, provider=provider)
    elif backend == "openvino":
        from .openvino.convert import openvino_stage

        for name in names:
            record = manifest.components[name]
            record.openvino = openvino_stage(bundle_dir, record, precision=precision)
    else:
        from .tensorrt.build import build_trt_plans

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
            static=manifest.shapes.static,
        )
    for name in names:
        record = manifest.components[name]
        record.checksums = describe_files(bundle_dir, record)
    write_manifest(bundle_dir, manifest)
    return manifest


def prepare_cpu_engines(bundle_dir: Path, manifest: Manifest) -> None:
    """Open each CPU engine of the written bundle once, so that the per-machine caches hold them and the
    first load after the build is quick: ONNX Runtime's *all*-level graphs (``runtime/engines/ort/session.py``)
    and OpenVINO's compiled models. Nothing when caching is off; a failure is only logged (the bundle is
    written, and loading it reports the problem)."""
    from sdrt.runtime.engines.cache import cache_root
    from sdrt.runtime.errors import SdrtError

    if cache_root() is None:
        return
    for name, record in manifest.components.items():
        try:
            if record.ort is not None and record.ort.provider == "cpu":
                from sdrt.runtime.engines.ort.session import open_cpu_session
                from sdrt.runtime.engines.providers import import_onnxruntime

                log.info("%s: preparing ONNX Runtime's graph for this CPU", name)
                open_cpu_session(import_onnxruntime("cpu"), bundle_dir / record.ort.file, name=name)
            if record.openvino is not None:
                from sdrt.runtime.engines.openvino.engine import OpenVinoEngine

                log.info("%s: compiling the OpenVINO IR into the model cache", name)
                OpenVinoEngine(bundle_dir / record.openvino.file, record.openvino.precision, name=name)
        except SdrtError as error:
            log.warning("%s: could not prepare its engine for this machine: %s", name, error)
