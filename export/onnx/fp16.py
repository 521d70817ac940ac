"""fp16 conversion for GPU builds, keeping in fp32 what must stay there.

The converter is onnxruntime.transformers' ``convert_float_to_float16``. Graph inputs and outputs stay
fp32 (``keep_io_types``), so the runtime feeds the same arrays whatever the precision. Resize's
``roi`` and ``scales`` inputs are put back to fp32 afterwards: the converter leaves them fp16, which
ONNX Runtime rejects. Ops in ``op_block_list`` (the converter's defaults plus any the validation shows
overflowing) stay fp32.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

_SHAPE_INPUTS = {"Resize": (1, 2), "Upsample": (1,)}


def restore_fp32_shape_inputs(model) -> int:
    """Make Resize roi/scales fp32 again (initializers, Constant nodes, or a Cast inserted). Returns fixes."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    fp32_casts = {
        n.output[0]
        for n in model.graph.node
        if n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT for a in n.attribute)
    }
    casts_added: dict[str, str] = {}  # one Cast per tensor, whatever number of Resize nodes read it
    fixes = 0
    new_nodes = []
    for node in model.graph.node:
        for index in _SHAPE_INPUTS.get(node.op_type, ()):
            if index >= len(node.input) or not node.input[index]:
                continue
            name = node.input[index]
            if name in inits and inits[name].data_type == TensorProto.FLOAT16:
                array = numpy_helper.to_array(inits[name]).astype(np.float32)
                inits[name].CopyFrom(numpy_helper.from_array(array, name))
                fixes += 1
            elif name in constants:
                attr = next(a for a in constants[name].attribute if a.name == "value")
                if attr.t.data_type == TensorProto.FLOAT16:
                    array = numpy_helper.to_array(attr.t).astype(np.float32)
                    attr.t.CopyFrom(numpy_helper.from_array(array, name))
                    fixes += 1
            elif name not in inits and name not in fp32_casts:
                if name not in casts_added:
                    casts_added[name] = f"{name}_as_fp32"
                    new_nodes.append(
                        helper.make_node("Cast", [name], [casts_added[name]], to=TensorProto.FLOAT)
                    )
                node.input[index] = casts_added[name]
                fixes += 1
    if new_nodes:
        model.graph.node.extend(new_nodes)  # topological order is restored by the caller
    return fixes


def fp16_model(model, **options):
    """``convert_float_to_float16(model, **options)``, with the duplicate Casts of onnxruntime < 1.32
    merged: its converter gave every fp32-blocked consumer of an fp16 tensor its own Cast named
    ``<tensor>_cast_to_fp32``, so a tensor feeding two blocked nodes (a Resize scale shared by two
    upsamplers, as torch 2.11's exporter leaves it) declared that output twice: an invalid graph."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, **options)
    merged = merge_duplicate_casts(converted.graph)
    if merged:
        log.debug("merged %d duplicate Cast nodes of the fp16 converter", merged)
    return converted


def merge_duplicate_casts(graph) -> int:
    """Drop each Cast whose output an identical Cast (same input, same ``to``) already produces, and the
    value_info entries declared twice. Returns the Casts dropped."""

    def computes(node) -> tuple | None:  # what a Cast computes; None for other nodes
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        return (node.input[0], to) if node.op_type == "Cast" else None

    produced: dict[str, tuple | None] = {}
    kept = []
    for node in graph.node:
        if (
            node.op_type == "Cast"
            and node.output[0] in produced
            and produced[node.output[0]] == computes(node)
        ):
            continue
        produced.update(dict.fromkeys(node.output, computes(node)))
        kept.append(node)
    dropped = len(graph.node) - len(kept)
    if dropped:
        del graph.node[:]
        graph.node.extend(kept)
        seen: set[str] = set()
        infos = []
        for info in graph.value_info:  # the first of each name, in order
            if info.name not in seen:
                seen.add(info.name)
                infos.append(info)
        del graph.value_info[:]
        graph.value_info.extend(infos)
    return dropped


def _topological_sort(graph) -> None:
    produced: dict[str, int] = {}
    nodes = list(graph.node)
    for i, node in enumerate(nodes):
        for out in node.output:
            produced[out] = i
    order: list[int] = []
    state: dict[int, int] = {}

    def visit(i: int) -> None:
        stack = [(i, iter(nodes[i].input))]
        state[i] = 1
        while stack:
            j, inputs = stack[-1]
            advanced = False
            for name in inputs:
                k = produced.get(name)
                if k is not None and k not in state:
                    state[k] = 1
                    stack.append((k, iter(nodes[k].input)))
                    advanced = True
                    break
            if not advanced:
                stack.pop()
                order.append(j)

    for i in range(len(nodes)):
        if i not in state:
            visit(i)
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)


def convert_to_fp16(src: Path, dst: Path, *, op_block_list: list[str] | None = None) -> tuple[int, bool]:
    """Convert the fp32 graph at ``src`` to fp16 (fp32 I/O) and save at ``dst``. Returns (bytes, external)."""
    import onnx
    import onnx_ir as ir
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    from .cleanup import save_onnx

    model = onnx.load(str(src), load_external_data=True)
    blocked = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(op_block_list or ()))
    model = fp16_model(model, keep_io_types=True, op_block_list=blocked, disable_shape_infer=True)
    fixes = restore_fp32_shape_inputs(model)
    _topological_sort(model.graph)
    log.debug("%s: fp16, %d Resize shape inputs kept fp32", dst.name, fixes)
    return save_onnx(ir.from_proto(model), dst)
