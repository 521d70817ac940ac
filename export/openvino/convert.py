"""``openvino_stage``: one component's fp32 ONNX graph as OpenVINO IR (``openvino/<name>.xml`` + ``.bin``,
fp32 weights), compiled once with the bundle's inference precision and held to the validation gate
(fp32: relative error <= 1e-4; bf16: PSNR >= 30 dB) against the torch references."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sdrt.runtime.bundle.records import ComponentRecord, OpenVinoRecord
from sdrt.runtime.engines.openvino.engine import (
    OpenVinoEngine,
    cpu_has_bf16,
    effective_precision,
    import_openvino,
    shared_core,
)

if TYPE_CHECKING:
    from openvino import Model

log = logging.getLogger(__name__)


def openvino_stage(
    bundle_dir: Path,
    record: ComponentRecord,
    *,
    precision: str,
    fp32_graph: Path | None = None,
    cases: list | None = None,
) -> OpenVinoRecord:
    """Write ``openvino/<name>.xml`` from the fp32 graph; validate it when ``cases`` are given."""
    from sdrt.export.onnx.validate import compare_outputs

    ov = import_openvino()
    started = time.perf_counter()
    file = f"openvino/{record.name}.xml"
    (bundle_dir / "openvino").mkdir(parents=True, exist_ok=True)
    log.info("%s: converting to OpenVINO IR (%s)", record.name, precision)
    model = ov.convert_model(str(fp32_graph or bundle_dir / record.onnx))
    _keep_io_names(model, record)
    ov.save_model(model, str(bundle_dir / file), compress_to_fp16=False)
    del model
    result = OpenVinoRecord(
        file=file, precision=_recorded(record.name, precision), openvino_version=ov.get_version()
    )
    if cases:
        engine = OpenVinoEngine(bundle_dir / file, precision, name=record.name)
        result.validation = compare_outputs(
            lambda names, feeds: [engine.run(feeds)[n] for n in names],
            cases,
            component=f"{record.name} (openvino/{engine.precision})",
            precision=engine.precision,
            provider=f"OpenVINO CPU {engine.precision}",
        )
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _recorded(name: str, precision: str) -> str:
    """The precision the bundle records (``recorded_precision``), with a warning where it is not the asked one."""
    ran = recorded_precision(precision)
    if ran != precision:
        log.warning(
            "%s: --precision %s: this CPU has no bf16 (AVX-512 BF16 or AMX), so OpenVINO computes %s; recorded "
            "as %s",
            name,
            precision,
            ran,
            ran,
        )
    return ran


def recorded_precision(precision: str) -> str:
    """What this CPU computes for ``precision`` (``--precision bf16`` where the CPU has no bf16 runs, and is
    validated, in fp32), except ``auto``, which each machine resolves when it loads the bundle."""
    if precision == "auto":
        return precision
    return effective_precision(precision, cpu_has_bf16(shared_core()))


def _keep_io_names(model: Model, record: ComponentRecord) -> None:
    """Each input and output named exactly as in the ONNX graph: OpenVINO merges a tensor's names with those
    of the node it feeds (``input_ids`` with its Cast's output), and the runtime feeds by the ONNX name."""
    for ports, names in ((model.inputs, record.inputs), (model.outputs, record.outputs)):
        for port in ports:
            matching = [n for n in names if n in port.get_names()]
            if matching:
                port.get_tensor().set_names({matching[0]})
