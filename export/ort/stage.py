"""The ORT backends' export stage: ``ort/<component>.onnx``, the exported graph optimized offline for one
ONNX Runtime provider, validated where that provider runs here."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sdrt.runtime.bundle.records import ComponentRecord, OrtRecord
from sdrt.runtime.components import component_class

log = logging.getLogger(__name__)


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

    from ..onnx.validate import validate_onnx
    from .optimize import optimize_for_ort

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
