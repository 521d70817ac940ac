"""``--backend ort``: graphs optimized offline for the chosen ONNX Runtime execution provider.

- cpu: ONNX Runtime's own graph optimizer at the *extended* level (fusions with CPU kernels),
  saved with ``SessionOptions.optimized_model_filepath``. The *all* level adds NCHWc layouts tied to
  the building machine's CPU, so it is left for the session at load time.
- cuda: built from the fp32 graph on any machine (no GPU needed), in this order:
  1. sdrt's attention subgraphs -> ``MultiHeadAttention`` (``attention_fusion``; fp16: packed QKV / KV);
  2. ``onnxruntime.transformers.optimizer`` (model types unet / vae / clip, ``opt_level=0``: its Python
     fusions only): GroupNorm, SkipGroupNorm, BiasSplitGelu, NhwcConv, BiasAdd, LayerNorm,
     SkipLayerNorm;
  3. layout Transposes between the NHWC fusions cancelled where the graph allows (``transposes``:
     NHWC Unsqueeze, residual Adds and skip Concats in NHWC), and the useless Casts the fusions add
     removed (``casts``);
  4. fp16 builds: ``convert_float_to_float16`` with fp32 graph inputs/outputs (the runtime feeds the
     same arrays whatever the precision) and the timestep embedding (``Sin``/``Cos`` of ``t·freq``,
     up to ~1000 rad) kept fp32; then Casts of constants are folded (Resize ``scales`` end up fp32
     initializers, nothing to patch), Cast round trips removed, and the graph sorted.
  The record lists the fused operator counts and the Cast / Transpose / node counts of the result.
  The fused graph needs the CUDA provider (NhwcConv, GroupNorm... have no CPU kernels);
  ``cpu_check_variant=True`` builds the same pipeline with only the fusions that have CPU kernels
  (unpacked MultiHeadAttention, LayerNorm, SkipLayerNorm), which is what a CPU-only machine can
  validate (``gate``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sdrt.export.onnx.cleanup import EXTERNAL_DATA_THRESHOLD
from sdrt.runtime.components import Component

log = logging.getLogger(__name__)


def _onnx_bytes(path: Path) -> int:
    data = path.with_name(path.stem + ".onnx_data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def optimize_for_cpu(src: Path, dst: Path) -> dict[str, Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    if _onnx_bytes(src) > EXTERNAL_DATA_THRESHOLD:
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", dst.stem + ".onnx_data"
        )
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
        )
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return {"provider": "cpu", "optimized": True, "optimizer": "onnxruntime", "level": "extended"}


FUSED_OPS = (
    "MultiHeadAttention",
    "Attention",
    "GroupNorm",
    "SkipGroupNorm",
    "NhwcConv",
    "BiasSplitGelu",
    "BiasAdd",
    "LayerNormalization",
    "SkipLayerNormalization",
)
# fusions whose operators have CUDA kernels only (off in the CPU-checkable variant)
_CUDA_ONLY_FUSIONS = (
    "enable_group_norm",
    "enable_skip_group_norm",
    "enable_bias_splitgelu",
    "enable_nhwc_conv",
    "enable_bias_add",
    "enable_packed_qkv",
    "enable_packed_kv",
)
# graph inputs feeding a sinusoidal embedding, kept fp32 up to the first projection
_EMBEDDING_INPUTS = ("timestep", "time_ids")


def graph_counts(model: Any) -> dict[str, Any]:
    """Fused operator counts (non-zero) and the Cast, Transpose and total node counts of ``model``."""
    from collections import Counter

    ops = Counter(node.op_type for node in model.graph.node)
    return {
        "fused": {op: ops[op] for op in FUSED_OPS if ops[op]},
        "casts": ops["Cast"],
        "transposes": ops["Transpose"],
        "nodes": len(model.graph.node),
    }


def embedding_nodes(model: Any) -> list[str]:
    """Names of the nodes from the timestep / time_ids inputs up to (not including) the first MatMul/Gemm."""
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    names: list[str] = []
    seen: set[int] = set()
    frontier = [i.name for i in model.graph.input if i.name in _EMBEDDING_INPUTS]
    while frontier:
        value = frontier.pop()
        for node in consumers.get(value, []):
            if id(node) in seen or node.op_type in ("MatMul", "Gemm"):
                continue
            seen.add(id(node))
            if not node.name:
                node.name = f"{node.op_type}_embedding_{len(seen)}"
            names.append(node.name)
            frontier.extend(node.output)
    return names


def _untype_internal_values(model: Any, blocked: set[str]) -> None:
    """Drop the value_info of tensors that only run between fp32-kept nodes.

    The fp16 converter puts a Cast to fp16 and back around every kept node whose tensors it has a
    float value_info for (a static-shape export has one for every tensor): fp32 -> fp16 -> fp32 between
    two kept nodes rounds exactly what they are kept in fp32 for. Without the value_info it leaves
    them alone, and it still casts at the boundary, where a kept node feeds a converted one.
    """
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    internal = {
        out
        for node in model.graph.node
        if node.name in blocked
        for out in node.output
        if out and consumers.get(out) and all(c in blocked for c in consumers[out])
    }
    internal |= {
        i.name
        for i in model.graph.input
        if consumers.get(i.name) and all(c in blocked for c in consumers[i.name])
    }
    kept = [v for v in model.graph.value_info if v.name not in internal]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def _cast_to(node: Any) -> int:
    return next(a.i for a in node.attribute if a.name == "to")


def _bypass_input_round_trips(model: Any, blocked: set[str]) -> None:
    """fp32-kept nodes read an fp32 graph input directly, not through its Cast to fp16 and back.

    ``keep_io_types`` casts every float graph input to fp16; a kept node (the timestep embedding) then
    gets it back through a Cast to fp32, rounded to fp16 on the way (a fractional timestep loses up to
    0.25 near 1000). The Casts left unused are removed by the Cast clean-up.
    """
    inputs = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == 1}
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.name not in blocked:
            continue
        for i, name in enumerate(node.input):
            up = producer.get(name)
            if up is None or up.op_type != "Cast" or _cast_to(up) != 1:
                continue
            down = producer.get(up.input[0])
            if down is not None and down.op_type == "Cast" and down.input[0] in inputs:
                node.input[i] = down.input[0]


def fused_cuda_model(
    src_fp32: Path, *, component: type[Component], precision: str, cpu_check_variant: bool = False
) -> tuple[Any, dict[str, Any]]:
    """The fused (and, for fp16, converted) graph as an ``onnxruntime.transformers`` OnnxModel."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from sdrt.export.onnx.fp16 import fp16_model, restore_fp32_shape_inputs

    from .attention_fusion import fuse_matmul_attention
    from .casts import fold_constant_casts, remove_useless_casts
    from .transposes import reduce_layout_transposes

    model_type = component.ort_model_type
    proto = onnx.load(str(src_fp32), load_external_data=True)
    before = graph_counts(proto)
    fp16 = precision == "fp16"
    attention = fuse_matmul_attention(proto, packed=fp16 and not cpu_check_variant)
    options = FusionOptions(model_type)
    if cpu_check_variant:
        for flag in _CUDA_ONLY_FUSIONS:
            setattr(options, flag, False)
    else:
        options.enable_packed_qkv = options.enable_packed_kv = fp16
    _quiet_transformers_logs()
    model = optimize_model(
        proto, model_type=model_type, opt_level=0, optimization_options=options, use_gpu=True
    )
    transposes_removed = reduce_layout_transposes(model.model)
    model.topological_sort()
    casts_removed = remove_useless_casts(model.model)
    if fp16:
        fp32_nodes = embedding_nodes(model.model)
        _untype_internal_values(model.model, set(fp32_nodes))
        converted = fp16_model(
            model.model, keep_io_types=True, node_block_list=fp32_nodes, disable_shape_infer=True
        )
        model.initialize(converted)
        _bypass_input_round_trips(model.model, set(fp32_nodes))
        model.topological_sort()
        fold_constant_casts(model.model)
        restore_fp32_shape_inputs(model.model)
        model.topological_sort()
        casts_removed += remove_useless_casts(model.model)
    stats = {
        "before": before,
        "attention_fused": attention,
        "useless_casts_removed": casts_removed,
        "layout_transposes_removed": transposes_removed,
    }
    return model, stats


def _quiet_transformers_logs() -> None:
    for name in ("onnx_model", "fusion_base", "fusion_utils", "onnx_model_unet", "fusion_attention_unet"):
        logging.getLogger(name).setLevel(logging.WARNING)


def save_graph(model: Any, dst: Path) -> bool:
    """Save an ``onnx.ModelProto``; past 2 GB of weights they go to ``<name>.onnx_data`` (the bundle's
    convention, which ``bundle.component_files`` carries over). Returns whether they did."""
    import onnx

    data = dst.with_name(dst.stem + ".onnx_data")
    data.unlink(missing_ok=True)
    external = sum(t.ByteSize() for t in model.graph.initializer) > EXTERNAL_DATA_THRESHOLD
    if external:
        onnx.save_model(
            model,
            str(dst),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data.name,
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(dst))
    return external


def optimize_for_cuda(
    src_fp32: Path, dst: Path, *, component: type[Component], precision: str, cpu_check_variant: bool = False
) -> dict[str, Any]:
    """Write the fused graph for the CUDA provider (buildable without a GPU); returns the manifest record."""
    model, stats = fused_cuda_model(
        src_fp32, component=component, precision=precision, cpu_check_variant=cpu_check_variant
    )
    counts = graph_counts(model.model)
    save_graph(model.model, dst)
    log.info(
        "%s: fused for CUDA %s; %d Cast, %d Transpose, %d nodes (fp32 export: %d Cast, %d Transpose, %d nodes)",
        component.name,
        counts["fused"],
        counts["casts"],
        counts["transposes"],
        counts["nodes"],
        stats["before"]["casts"],
        stats["before"]["transposes"],
        stats["before"]["nodes"],
    )
    return {
        "provider": "cuda",
        "optimized": True,
        "optimizer": f"onnxruntime.transformers ({component.ort_model_type}) + sdrt attention fusion",
        "precision": precision,
        **counts,
        "export_counts": stats["before"],
        "useless_casts_removed": stats["useless_casts_removed"],
        "layout_transposes_removed": stats["layout_transposes_removed"],
    }


def optimize_for_ort(
    src: Path,
    dst: Path,
    *,
    component: type[Component],
    provider: str,
    precision: str,
    src_fp32: Path | None = None,
) -> dict[str, Any]:
    """Write the ORT-optimized graph ``dst`` for ``provider`` (cpu | cuda); returns the manifest record."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if provider == "cuda":
        record = optimize_for_cuda(src_fp32 or src, dst, component=component, precision=precision)
    else:
        record = optimize_for_cpu(src, dst)
    record["bytes"] = _onnx_bytes(dst)
    log.debug("%s: ORT graph for %s written to %s", component.name, provider, dst)
    return record
