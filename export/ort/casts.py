"""Cast clean-up for the fused ORT graphs: element types propagated without shape inference.

onnxruntime.transformers' fusions add Casts they cannot prove useless (``FusionNhwcConv`` casts every
new NHWC input to the weight type, since the new Transpose has no type information), and its own
clean-up (``remove_useless_cast_nodes``) needs symbolic shape inference, which fails on static-shape
graphs with NhwcConv (onnxruntime 1.32: ``_compute_conv_pool_shape`` reads an output shape that is not
there). The element type alone is enough to find a useless Cast, and it follows from simple rules
(:func:`element_types`), so this module does that instead:

- ``Cast(x, to=T)`` with ``x`` of type T is removed (its consumers read ``x``);
- ``Cast(Cast(x))`` back to ``x``'s own type through a wider type is removed (fp16 -> fp32 -> fp16);
- a Cast of a constant is folded into a new initializer of the target type (what the fp16 converter
  leaves in front of Resize's ``scales``).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_INT64, _BOOL, _FLOAT = 7, 9, 1
_FIXED = {
    "Shape": _INT64,
    "Size": _INT64,
    "NonZero": _INT64,
    "ArgMax": _INT64,
    "ArgMin": _INT64,
    "Equal": _BOOL,
    "Less": _BOOL,
    "LessOrEqual": _BOOL,
    "Greater": _BOOL,
    "GreaterOrEqual": _BOOL,
    "Not": _BOOL,
    "And": _BOOL,
    "Or": _BOOL,
    "Xor": _BOOL,
    "IsNaN": _BOOL,
    "IsInf": _BOOL,
}
# (narrow, wide) float types: narrow -> wide -> narrow gives back the same values
_WIDENING = {(10, 1), (10, 11), (1, 11)}
# ops all of whose outputs have the first input's type (the Skip*Norm sums)
_SAME_TYPE_OUTPUTS = {"SkipGroupNorm", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "Split"}
# ops whose output takes the type of the input at this index (default 0)
_FROM_INPUT = {"Where": 1, "Range": 0}


def element_types(model: Any) -> dict[str, int]:
    """TensorProto element type of every value whose type follows from the graph's inputs and constants."""
    from onnx import helper

    types: dict[str, int] = {}
    for value in list(model.graph.input) + list(model.graph.value_info):
        if value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    for node in model.graph.node:
        out: int | None = None
        if node.op_type == "Cast":
            out = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "to")
        elif node.op_type in ("Constant", "ConstantOfShape"):
            value = next((a for a in node.attribute if a.name == "value"), None)
            out = value.t.data_type if value is not None else _FLOAT
        elif node.op_type in _FIXED:
            out = _FIXED[node.op_type]
        else:
            index = _FROM_INPUT.get(node.op_type, 0)
            if index < len(node.input):
                out = types.get(node.input[index])
        if out:
            for name in node.output if node.op_type in _SAME_TYPE_OUTPUTS else node.output[:1]:
                if name:  # "" is an omitted optional output
                    types[name] = out
    return types


def _rewire(model: Any, old: str, new: str) -> None:
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def remove_useless_casts(model: Any) -> int:
    """Remove Casts to the type their input already has, and Cast round trips; returns how many."""
    from onnx import helper

    outputs = {o.name for o in model.graph.output}
    removed = 0
    changed = True
    while changed:
        changed = False
        types = element_types(model)
        producer = {o: n for n in model.graph.node for o in n.output}
        for node in list(model.graph.node):
            if node.op_type != "Cast" or node.output[0] in outputs:
                continue
            to = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "to")
            source = node.input[0]
            parent = producer.get(source)
            if types.get(source) != to and parent is not None and parent.op_type == "Cast":
                # x -> Cast to a wider type -> Cast back to x's type: lossless, so both go
                if types.get(parent.input[0]) == to and (to, types.get(source)) in _WIDENING:
                    source = parent.input[0]
            if types.get(source) != to:
                continue
            _rewire(model, node.output[0], source)
            model.graph.node.remove(node)
            removed += 1
            changed = True
            break
    _drop_unused(model)
    return removed


def fold_constant_casts(model: Any) -> int:
    """Replace ``Cast(initializer)`` by an initializer of the target type; returns how many."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    folded = 0
    for node in list(model.graph.node):
        if node.op_type != "Cast" or node.input[0] not in inits:
            continue
        to = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "to")
        array = numpy_helper.to_array(inits[node.input[0]])
        target = helper.tensor_dtype_to_np_dtype(to)
        model.graph.initializer.append(
            numpy_helper.from_array(np.asarray(array).astype(target), node.output[0])
        )
        model.graph.node.remove(node)
        folded += 1
    if folded:
        _drop_unused(model)
    return folded


def _drop_unused(model: Any) -> None:
    """Drop nodes (Casts left dangling) and initializers that nothing reads."""
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {name for node in model.graph.node for name in node.input} | outputs
        dead = [n for n in model.graph.node if n.op_type == "Cast" and n.output[0] not in used]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {name for node in model.graph.node for name in node.input} | outputs
    inits = [t for t in model.graph.initializer if t.name in used]
    if len(inits) != len(model.graph.initializer):
        del model.graph.initializer[:]
        model.graph.initializer.extend(inits)
