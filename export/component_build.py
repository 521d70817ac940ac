"""One component through the export: load (fp32) -> trace to ONNX -> clean up -> fp16 (GPU builds)
-> validate against torch -> the ORT graph for the chosen provider. Returns its manifest record."""

from __future__ import annotations

import gc
import logging
import shutil
import time
from pathlib import Path

from sdrt.runtime.backends import get_backend
from sdrt.runtime.bundle.records import ComponentRecord

from .jobs import ComponentJob, ExportSettings
from .model.folder import ModelFolder
from .stages import stage_of

log = logging.getLogger(__name__)


def build_component(
    folder: ModelFolder, job: ComponentJob, settings: ExportSettings, work: Path, scratch: Path
) -> ComponentRecord:
    """Export ``job``'s component into ``work/onnx`` (and ``work/ort``); scratch files go to ``scratch``."""
    from .model.folder import load_module
    from .onnx.cleanup import clean_onnx
    from .onnx.fp16 import convert_to_fp16
    from .onnx.trace import trace_to_onnx

    started = time.perf_counter()
    name, component = job.name, job.component
    model = load_module(folder, component, device=settings.export_device)
    spec = component.graph(folder, job.ranges, job.trace, **job.options)
    spec = spec.frozen() if settings.static else spec
    log.info("%s: tracing to ONNX at %s", name, spec.trace)
    raw = scratch / name / "raw" / f"{name}.onnx"
    trace_to_onnx(component, model, spec, raw, opset=settings.opset, device=settings.export_device)

    final = work / "onnx" / f"{name}.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    fp32_graph = final if job.precision == "fp32" else scratch / name / f"{name}.fp32.onnx"
    log.info("%s: cleaning up the graph", name)
    size, external = clean_onnx(raw, fp32_graph, keep_outputs=list(spec.outputs))
    shutil.rmtree(raw.parent, ignore_errors=True)
    if job.precision == "fp16":
        log.info("%s: converting to fp16", name)
        size, external = convert_to_fp16(fp32_graph, final)

    cases = None
    record = ComponentRecord(
        name=name,
        class_name=folder.classes[component.source][1],
        onnx=f"onnx/{name}.onnx",
        precision=job.precision,
        inputs=spec.inputs,
        outputs=spec.outputs,
        dims=spec.dims,
        trace=spec.trace,
        static=spec.static,
        external_data=external,
        bytes=size,
        opset=settings.opset,
        inputs_hash=job.inputs_hash,
    )
    if settings.validate:
        from .onnx.validate import reference_cases, validate_onnx

        sizes = spec.validation_sizes()
        log.info("%s: validating against torch at %s", name, sizes)
        cases = reference_cases(component, model, spec, sizes, device=settings.export_device)
        record.validation = validate_onnx(final, cases, component=name, precision=job.precision)
    digests = _weight_digests(name, model, job.precision)
    del model
    gc.collect()
    record.export_seconds = round(time.perf_counter() - started, 2)
    stage = stage_of(get_backend(settings.backend))
    stage.component(work, record, settings, fp32_graph=fp32_graph, cases=cases, scratch=scratch / name)
    _weight_map(record, work, digests)
    return record


def _weight_map(record: ComponentRecord, work: Path, digests: dict | None) -> None:
    """``onnx/<name>.weights.json`` for the graphs written (run-time LoRA's map), where LoRA applies."""
    if digests is not None:
        from .onnx.weight_names import write_weight_map

        graphs = [record.onnx] + ([record.ort.file] if record.ort else [])
        record.weights = write_weight_map(work, record.name, graphs, digests)


def _weight_digests(name: str, model: object, precision: str) -> dict | None:
    """The digests of the weights LoRA files touch (``onnx.weight_names``), for the components they touch."""
    from .onnx.weight_names import LORA_COMPONENTS, weight_digests

    if name not in LORA_COMPONENTS:
        return None
    return weight_digests(model, ("float32",) if precision == "fp32" else ("float16", "float32"))
