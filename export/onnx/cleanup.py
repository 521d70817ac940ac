"""ONNX clean-up after tracing: unused outputs removed, constants folded, dead nodes dropped,
shapes inferred, and the graph saved as one file, or with one ``.onnx_data`` file past 2 GB.

Folding uses onnxscript's optimizer (it works on ``onnx_ir`` models, which keep large weights out
of the 2 GB protobuf); when onnxscript is missing, polygraphy's ``fold_constants`` (needs
onnx-graphsurgeon); when both are missing, only unused nodes are removed.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

PROTOBUF_LIMIT = 2**31 - 1
# stay well under protobuf's 2 GiB: the graph structure is counted too
EXTERNAL_DATA_THRESHOLD = 2_000_000_000


def initializer_bytes(model) -> int:
    """Total bytes of an ``onnx_ir`` model's initializers."""
    return sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None)


def _quiet_optimizer_logs() -> None:
    for name in ("onnx_ir", "onnxscript"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _fold(model):
    _quiet_optimizer_logs()
    try:
        from onnxscript import optimizer
    except ImportError:
        optimizer = None
    if optimizer is not None:
        return optimizer.optimize(model, onnx_shape_inference=False), "onnxscript"
    try:
        import onnx_graphsurgeon  # noqa: F401
        from polygraphy.backend.onnx import fold_constants
    except ImportError:
        log.warning("neither onnxscript nor onnx-graphsurgeon is installed: constants are not folded")
        return model, "none"
    import onnx_ir as ir

    proto = fold_constants(ir.to_proto(model), error_ok=True)
    return ir.from_proto(proto), "polygraphy"


def save_onnx(model, path: Path) -> tuple[int, bool]:
    """Save an ``onnx_ir`` model; past 2 GB the weights go to ``<name>.onnx_data``. Returns (bytes, external)."""
    import onnx_ir as ir

    path = Path(path)
    data_path = path.with_name(path.stem + ".onnx_data")
    data_path.unlink(missing_ok=True)
    external = initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD
    if external:
        ir.save(model, path, external_data=data_path.name)
    else:
        ir.save(model, path)
    size = path.stat().st_size + (data_path.stat().st_size if data_path.exists() else 0)
    return size, external


def infer_shapes(path: Path) -> None:
    """Run ONNX shape inference in place (path-based, so it works past 2 GB)."""
    import onnx

    try:
        onnx.shape_inference.infer_shapes_path(str(path), str(path))
    except Exception as err:  # shapes are a help for later tools, never required
        log.warning("shape inference failed on %s: %s", path.name, err)


def clean_onnx(raw_path: Path, out_path: Path, *, keep_outputs: list[str]) -> tuple[int, bool]:
    """Read the traced graph at ``raw_path``, clean it and write ``out_path``. Returns (bytes, external)."""
    import onnx_ir as ir
    from onnx_ir.passes.common import RemoveUnusedNodesPass

    model = ir.load(raw_path)
    outputs = model.graph.outputs
    for value in [v for v in outputs if v.name not in keep_outputs]:
        outputs.remove(value)
    model, how = _fold(model)
    RemoveUnusedNodesPass()(model)
    size, external = save_onnx(model, out_path)
    del model
    infer_shapes(out_path)
    log.debug("%s: cleaned (folding: %s), %d bytes, external data: %s", out_path.name, how, size, external)
    return size, external
