"""The fused CUDA graph's CUDA-only operators rewritten as standard ONNX ops, so the CPU can run it.

ONNX Runtime has no CPU kernels for NhwcConv, GroupNorm, SkipGroupNorm and BiasSplitGelu (checked with
onnxruntime 1.32: "Could not find an implementation"). To check the *wiring* of a fused graph on a
machine without a GPU (every fusion's inputs and outputs, the NHWC layout and the Transposes left
between NHWC and NCHW ops, the Cast clean-up), this module replaces each of them by what the operator
computes (from the contrib operator specification), in standard ops:

- ``NhwcConv(X, W, B)``: ``Conv`` between Transposes (W back to OIHW);
- ``GroupNorm(X, gamma, beta)`` / ``SkipGroupNorm(X, gamma, beta, skip[, bias]) -> (Y, X+skip+bias)``
  (``channels_last``; ``activation`` 1 = SiLU): ``InstanceNormalization`` over ``[N, groups, ·]``;
- ``BiasSplitGelu(X, bias)``: ``(X+bias)[..., :D/2] * gelu((X+bias)[..., D/2:])`` (erf form);
- ``BiasAdd(X, bias, skip)``: ``X + bias + skip``.

The CPU kernels of MultiHeadAttention (unpacked), LayerNormalization and SkipLayerNormalization run
as they are. Packed QKV/KV attention has no CPU kernel, so this applies to the fp32 build (which does
not pack). The kernels' own numerics are not what this checks: they are ONNX Runtime's, checked on
CUDA by the validation gate there.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_NHWC, _NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


class _Builder:
    def __init__(self, model: Any, prefix: str) -> None:
        self.model = model
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}/{what}_{self.count}"

    def const(self, array: np.ndarray, what: str = "const") -> str:
        from onnx import numpy_helper

        name = self.name(what)
        self.model.graph.initializer.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs: Any) -> str:
        from onnx import helper

        outputs = outputs or [self.name(op_type)]
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=self.name(op_type + "_node"), **attrs)
        )
        return outputs[0]


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _initializer(model: Any, name: str) -> np.ndarray:
    from onnx import numpy_helper

    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    raise ValueError(f"{name} is not an initializer")


def _group_norm(b: _Builder, x_nhwc: str, gamma: str, beta: str, attrs: dict[str, Any], out: str) -> None:
    groups = int(attrs["groups"])
    eps = float(attrs.get("epsilon", 1e-5))
    x = b.op("Transpose", [x_nhwc], perm=_NCHW)
    shape = b.op("Shape", [x])
    grouped = b.op("Reshape", [x, b.const(np.array([0, groups, -1], np.int64))])
    ones = b.const(np.ones(groups, np.float32))
    zeros = b.const(np.zeros(groups, np.float32))
    normed = b.op("InstanceNormalization", [grouped, ones, zeros], epsilon=eps)
    y = b.op("Reshape", [normed, shape])
    axes = b.const(np.array([1, 2], np.int64))
    y = b.op("Add", [b.op("Mul", [y, b.op("Unsqueeze", [gamma, axes])]), b.op("Unsqueeze", [beta, axes])])
    if int(attrs.get("activation", 0)) == 1:
        y = b.op("Mul", [y, b.op("Sigmoid", [y])])
    b.op("Transpose", [y], [out], perm=_NHWC)


def emulate_cuda_only_ops(model: Any) -> dict[str, int]:
    """Rewrite the CUDA-only operators of the fp32 ``onnx.ModelProto`` in place; returns counts per op."""
    counts: dict[str, int] = {}
    kept: list[Any] = []
    for index, node in enumerate(list(model.graph.node)):
        b = _Builder(model, f"emulated/{node.op_type}_{index}")
        attrs = _attrs(node)
        if node.op_type == "NhwcConv":
            weight = _initializer(model, node.input[1]).transpose(0, 3, 1, 2)
            x = b.op("Transpose", [node.input[0]], perm=_NCHW)
            conv_attrs = {
                k: v
                for k, v in attrs.items()
                if k in ("dilations", "group", "kernel_shape", "pads", "strides")
            }
            y = b.op(
                "Conv", [x, b.const(np.ascontiguousarray(weight), "weight"), *node.input[2:]], **conv_attrs
            )
            b.op("Transpose", [y], [node.output[0]], perm=_NHWC)
        elif node.op_type == "GroupNorm":
            _group_norm(b, node.input[0], node.input[1], node.input[2], attrs, node.output[0])
        elif node.op_type == "SkipGroupNorm":
            total = b.op("Add", [node.input[0], node.input[3]])
            if len(node.input) > 4 and node.input[4]:
                total = b.op("Add", [total, node.input[4]])
            if len(node.output) > 1 and node.output[1]:
                total = b.op("Identity", [total], [node.output[1]])
            _group_norm(b, total, node.input[1], node.input[2], attrs, node.output[0])
        elif node.op_type == "BiasSplitGelu":
            x = b.op("Add", [node.input[0], node.input[1]])
            left, right = b.name("left"), b.name("right")
            b.op("Split", [x], [left, right], axis=-1, num_outputs=2)
            erf = b.op("Erf", [b.op("Mul", [right, b.const(np.array(1 / np.sqrt(2), np.float32))])])
            gelu = b.op(
                "Mul",
                [
                    b.op("Mul", [right, b.const(np.array(0.5, np.float32))]),
                    b.op("Add", [erf, b.const(np.array(1, np.float32))]),
                ],
            )
            b.op("Mul", [left, gelu], [node.output[0]])
        elif node.op_type == "BiasAdd":
            b.op("Add", [b.op("Add", [node.input[0], node.input[1]]), node.input[2]], [node.output[0]])
        else:
            kept.append(node)
            continue
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
        kept.extend(b.nodes)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    inits = [t for t in model.graph.initializer if t.name in used]  # the NHWC weights Conv replaced
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 18 for o in model.opset_import):
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = 18  # Split with num_outputs
    return counts
