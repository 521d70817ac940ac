"""Layout Transposes left by the NHWC fusions, removed where the graph allows.

onnxruntime.transformers' UNet/VAE fusions run convolutions and group norms in NHWC (``NhwcConv``,
``GroupNorm``/``SkipGroupNorm`` with ``channels_last``) and put a Transpose on every edge between
them and the NCHW ops left in between. Two common edges are rewritten here:

- ``Transpose[0,2,3,1](Unsqueeze(x, axes=[2,3]))`` (a time-embedding bias ``[B,C]`` made 4-D for a
  SkipGroupNorm) is ``Unsqueeze(x, axes=[1,2])``: no data moves, so no Transpose is needed;
- ``Concat(axis=1)`` read back through ``Transpose[0,2,3,1]`` by NHWC consumers (a UNet up block's
  skip connection, read by a GroupNorm and a shortcut NhwcConv): they read ``Concat(axis=3)`` of the
  inputs in NHWC instead: an input that is ``Transpose[0,3,1,2](x)`` contributes ``x``, any other input
  one Transpose to NHWC (done only when that saves Transposes); the Transposes nothing reads any
  more go;
- ``Add`` of two ``Transpose[0,3,1,2]`` outputs (a residual sum of two NHWC results) adds in NHWC and
  transposes once; a Transpose to NHWC of a Transpose to NCHW then cancels out.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_TO_NHWC = [0, 2, 3, 1]
_TO_NCHW = [0, 3, 1, 2]


def _perm(node: Any) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == "perm":
            return list(attr.ints)
    return None


def _axis(node: Any) -> int | None:
    for attr in node.attribute:
        if attr.name == "axis":
            return int(attr.i)
    return None


def _maps(model: Any) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, Any]]:
    producer = {o: n for n in model.graph.node for o in n.output if o}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inits = {t.name: t for t in model.graph.initializer}
    return producer, consumers, inits


def _unsqueeze_transposes(model: Any) -> int:
    from onnx import numpy_helper

    producer, consumers, inits = _maps(model)
    outputs = {o.name for o in model.graph.output}
    rewritten = 0
    for node in list(model.graph.node):
        if node.op_type != "Transpose" or _perm(node) != _TO_NHWC:
            continue
        unsqueeze = producer.get(node.input[0])
        if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or len(unsqueeze.input) < 2:
            continue
        axes = inits.get(unsqueeze.input[1])
        if axes is None or sorted(numpy_helper.to_array(axes).reshape(-1).tolist()) != [2, 3]:
            continue
        if node.output[0] in outputs:
            continue
        name = f"{unsqueeze.name or 'Unsqueeze'}_nhwc_axes"
        if name not in inits:
            axes_init = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), name)
            model.graph.initializer.append(axes_init)
            inits[name] = axes_init
        # the Transpose becomes the NHWC Unsqueeze (same output name, so its consumers need no change)
        node.op_type = "Unsqueeze"
        del node.attribute[:]
        del node.input[:]
        node.input.extend([unsqueeze.input[0], name])
        rewritten += 1
    return rewritten


def _concat_transposes(model: Any) -> int:
    from onnx import helper

    producer, consumers, _ = _maps(model)
    outputs = {o.name for o in model.graph.output}
    rewritten = 0
    additions: list[tuple[Any, list[Any]]] = []
    for concat in list(model.graph.node):
        if concat.op_type != "Concat" or _axis(concat) not in (1, -3):
            continue
        readers = [
            n
            for n in consumers.get(concat.output[0], [])
            if n.op_type == "Transpose" and _perm(n) == _TO_NHWC and n.output[0] not in outputs
        ]
        sources: list[str] = []
        new_nodes: list[Any] = []
        for i, name in enumerate(concat.input):
            parent = producer.get(name)
            if parent is not None and parent.op_type == "Transpose" and _perm(parent) == _TO_NCHW:
                sources.append(parent.input[0])  # already NHWC before its Transpose
            else:  # an NCHW input: one Transpose to NHWC for it
                nhwc_input = f"{concat.output[0]}_input{i}_nhwc"
                new_nodes.append(
                    helper.make_node("Transpose", [name], [nhwc_input], name=nhwc_input, perm=_TO_NHWC)
                )
                sources.append(nhwc_input)
        if len(readers) <= len(new_nodes):  # no Transpose saved
            continue
        nhwc = f"{concat.output[0]}_nhwc"
        new_nodes.append(helper.make_node("Concat", sources, [nhwc], name=f"{concat.name}_nhwc", axis=3))
        additions.append((concat, new_nodes))
        for reader in readers:
            for node in consumers.get(reader.output[0], []):
                for i, name in enumerate(node.input):
                    if name == reader.output[0]:
                        node.input[i] = nhwc
            model.graph.node.remove(reader)
        rewritten += len(readers) - (len(new_nodes) - 1)
    for anchor, nodes in additions:  # after the NCHW Concat: its inputs are defined by then
        index = list(model.graph.node).index(anchor)
        for offset, node in enumerate(nodes, start=1):
            model.graph.node.insert(index + offset, node)
    _drop_dead(model)
    return rewritten


def _add_transposes(model: Any) -> int:
    """``Add(Transpose_nchw(a), Transpose_nchw(b))`` -> ``Transpose_nchw(Add(a, b))``: one Transpose less."""
    from onnx import helper

    producer, _, _ = _maps(model)
    rewritten = 0
    additions: list[tuple[Any, Any]] = []
    for node in list(model.graph.node):
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        parents = [producer.get(name) for name in node.input]
        sources = [
            p.input[0] for p in parents if p is not None and p.op_type == "Transpose" and _perm(p) == _TO_NCHW
        ]
        if len(sources) != len(parents):
            continue
        nhwc = f"{node.output[0]}_nhwc"
        additions.append((node, helper.make_node("Add", sources, [nhwc], name=f"{node.name}_nhwc")))
        # the Add becomes the Transpose back to NCHW (same output name: its consumers need no change)
        node.op_type = "Transpose"
        del node.input[:]
        node.input.append(nhwc)
        node.attribute.append(helper.make_attribute("perm", _TO_NCHW))
        rewritten += 1
    for anchor, new in additions:
        index = list(model.graph.node).index(anchor)
        model.graph.node.insert(index, new)
    return rewritten


def _cancel_transpose_pairs(model: Any) -> int:
    """``Transpose_nhwc(Transpose_nchw(x))`` (or the other way round) is ``x``."""
    producer, consumers, _ = _maps(model)
    outputs = {o.name for o in model.graph.output}
    inverse = {tuple(_TO_NHWC): _TO_NCHW, tuple(_TO_NCHW): _TO_NHWC}
    cancelled = 0
    for node in list(model.graph.node):
        perm = _perm(node) if node.op_type == "Transpose" else None
        if perm is None or tuple(perm) not in inverse or node.output[0] in outputs:
            continue
        parent = producer.get(node.input[0])
        if parent is None or parent.op_type != "Transpose" or _perm(parent) != inverse[tuple(perm)]:
            continue
        for reader in consumers.get(node.output[0], []):
            for i, name in enumerate(reader.input):
                if name == node.output[0]:
                    reader.input[i] = parent.input[0]
        model.graph.node.remove(node)
        cancelled += 1
    return cancelled


def _drop_dead(model: Any) -> None:
    """Drop Transpose/Concat/Unsqueeze nodes whose outputs nothing reads (the NCHW side of rewritten edges)."""
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {name for node in model.graph.node for name in node.input} | outputs
        dead = [
            n
            for n in model.graph.node
            if n.op_type in ("Transpose", "Concat", "Unsqueeze") and n.output[0] not in used
        ]
        if not dead:
            return
        for node in dead:
            model.graph.node.remove(node)


def reduce_layout_transposes(model: Any) -> int:
    """Apply both rewrites to the ``onnx.ModelProto`` in place; returns how many Transposes they removed."""
    before = sum(1 for n in model.graph.node if n.op_type == "Transpose")
    _unsqueeze_transposes(model)
    _add_transposes(model)
    _cancel_transpose_pairs(model)
    _concat_transposes(model)
    _cancel_transpose_pairs(model)
    _drop_dead(model)
    after = sum(1 for n in model.graph.node if n.op_type == "Transpose")
    log.debug("layout Transposes: %d -> %d", before, after)
    return before - after
