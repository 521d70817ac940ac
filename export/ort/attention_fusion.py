"""Attention fusion for ONNX Runtime: sdrt's plain-matmul attention -> ``com.microsoft.MultiHeadAttention``.

``sdrt.export.onnx.matmul_attention.MatmulAttnProcessor`` (and transformers' eager CLIP attention) export as::

    Q = x·Wq (+bq)      Qh = Transpose[0,2,1,3](Reshape(Q, [B, S, H, D]))
    K = y·Wk (+bk)      Kh = Transpose[0,2,3,1](Reshape(K, [B, T, H, D]))
    V = y·Wv (+bv)      Vh = Transpose[0,2,1,3](Reshape(V, [B, T, H, D]))
    P = Softmax(MatMul(Qh, Kh) · scale (+ mask))        (a Cast to float may sit around Softmax)
    O = Reshape(Transpose[0,2,1,3](MatMul(P, Vh)), [B, S, H·D])

onnxruntime.transformers' UNet fusion recognises the subgraphs that torch's own attention exports
(``match_qkv_torch1``: 3-D batched matmuls over B·H; ``match_qkv_torch2``: the SDPA decomposition
with ``sqrt(scale)`` on Q and K computed from shapes), not this one, so this module fuses it itself,
before the rest of the optimizer runs: ``O = MultiHeadAttention(Q, K, V, attention_bias=mask)`` with
``num_heads=H`` and ``scale``. With ``packed=True`` (fp16 GPU graphs, as ORT's own fusion does) a
self-attention whose three projections are bias-free MatMuls on the same input becomes one MatMul with
the weights interleaved per head and a ``[B, S, H, 3, D]`` packed query; a cross-attention packs K and V
as ``[B, T, H, 2, D]``. Unpacked MultiHeadAttention has a CPU kernel, so the fused fp32 graph can be
checked against torch on any machine; the packed formats run on CUDA only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MS_DOMAIN = "com.microsoft"
_FLOAT = 1  # TensorProto.FLOAT


@dataclass
class _Match:
    softmax: Any
    nodes: list[Any]  # the nodes the fused node replaces
    q: str
    k: str
    v: str
    mask: str | None
    scale: float
    heads: int
    head_dim: int
    output: str


class _Graph:
    """Producer/consumer maps and constant lookup over an ``onnx.GraphProto``."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.nodes = list(model.graph.node)  # one wrapper per node: identities are compared below
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self._inits = {t.name: t for t in self.graph.initializer}
        self._to_array = numpy_helper.to_array

    def constant(self, name: str) -> np.ndarray | None:
        if name in self._inits:
            return self._to_array(self._inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return self._to_array(attr.t)
        return None

    def shape_values(self, name: str, rank: int) -> np.ndarray | None:
        """A Reshape target of ``rank`` dims: a constant, or a Concat of one-element parts (0 where computed)."""
        const = self.constant(name)
        if const is not None:
            return const.astype(np.int64) if const.shape == (rank,) else None
        node = self.producer.get(name)
        if node is None or node.op_type != "Concat" or len(node.input) != rank:
            return None
        values = []
        for part in node.input:
            value = self.constant(part)
            values.append(int(value.reshape(-1)[0]) if value is not None and value.size == 1 else 0)
        return np.array(values, dtype=np.int64)

    def parent(self, node: Any, index: int, op_type: str) -> Any:
        if index >= len(node.input):
            return None
        found = self.producer.get(node.input[index])
        return found if found is not None and found.op_type == op_type else None

    def only_consumer(self, name: str) -> Any:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 else None

    def weight_of(self, name: str) -> tuple[str, np.ndarray] | None:
        """``(x, W)`` when ``name`` is ``MatMul(x, W)`` with a 2-D constant W, else None."""
        node = self.producer.get(name)
        if node is None or node.op_type != "MatMul":
            return None
        weight = self.constant(node.input[1])
        if weight is None or weight.ndim != 2:
            return None
        return node.input[0], weight


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _skip_float_cast(g: _Graph, name: str) -> tuple[str, list[Any]]:
    """Walk up through a ``Cast(to=float)`` (a no-op in the fp32 graph this runs on)."""
    node = g.producer.get(name)
    if node is not None and node.op_type == "Cast" and _attr(node, "to") == _FLOAT:
        return node.input[0], [node]
    return name, []


def _heads_path(g: _Graph, name: str, perm: list[int]) -> tuple[str, np.ndarray, list[Any]] | None:
    """``Transpose[perm](Reshape(X, shape))`` -> (X, shape, nodes)."""
    transpose = g.producer.get(name)
    if transpose is None or transpose.op_type != "Transpose" or list(_attr(transpose, "perm", [])) != perm:
        return None
    reshape = g.parent(transpose, 0, "Reshape")
    if reshape is None:
        return None
    shape = g.shape_values(reshape.input[1], 4)
    if shape is None:
        return None
    return reshape.input[0], shape, [transpose, reshape]


def _key_path(g: _Graph, name: str) -> tuple[str, np.ndarray, list[Any]] | None:
    """K transposed for ``Q·Kᵀ``: one Transpose[0,2,3,1], or Transpose[0,1,3,2] after [0,2,1,3]."""
    found = _heads_path(g, name, [0, 2, 3, 1])
    if found is not None:
        return found
    outer = g.producer.get(name)
    if outer is None or outer.op_type != "Transpose" or list(_attr(outer, "perm", [])) != [0, 1, 3, 2]:
        return None
    inner = _heads_path(g, outer.input[0], [0, 2, 1, 3])
    return None if inner is None else (inner[0], inner[1], inner[2] + [outer])


def _projection_width(g: _Graph, name: str) -> int | None:
    """Columns of the projection producing ``name`` (``MatMul(x, W)`` or ``Add(b, MatMul(x, W))``)."""
    found = g.weight_of(name)
    if found is None:
        node = g.producer.get(name)
        if node is not None and node.op_type == "Add":
            for inp in node.input:
                found = g.weight_of(inp)
                if found is not None:
                    break
    return None if found is None else int(found[1].shape[1])


def _masked_scores(g: _Graph, softmax: Any) -> tuple[str, str | None, list[Any]] | None:
    """Up from the Softmax through a float Cast and an additive mask (each optional): (scores, mask, nodes)."""
    scores, nodes = _skip_float_cast(g, softmax.input[0])
    add = g.producer.get(scores)
    if add is None or add.op_type != "Add":
        return scores, None, nodes
    for i in (0, 1):  # an additive mask (CLIP's causal mask); the scaled scores are the Mul or Div side
        inner = g.producer.get(add.input[i])
        if inner is not None and inner.op_type in ("Mul", "Div"):
            return add.input[i], add.input[1 - i], nodes + [add]
    return None


def _scaled_qk(g: _Graph, scores: str) -> tuple[Any, Any, float] | None:
    """``MatMul(Qh, Kh) · scale`` or ``MatMul(Qh, Kh) / c`` with a constant: (Mul or Div, MatMul, scale)."""
    scale_node = g.producer.get(scores)
    if scale_node is None or scale_node.op_type not in ("Mul", "Div"):
        return None
    for i in (0, 1) if scale_node.op_type == "Mul" else (0,):
        const = g.constant(scale_node.input[1 - i])
        qk = g.parent(scale_node, i, "MatMul")
        if const is not None and const.size == 1 and qk is not None:
            value = float(const.reshape(()))
            return scale_node, qk, value if scale_node.op_type == "Mul" else 1.0 / value
    return None


def _probs_matmul(g: _Graph, softmax: Any) -> tuple[Any, list[Any]] | None:
    """The ``MatMul(P, Vh)`` alone reading P, the Softmax's output or its float Cast: (MatMul, [Cast] or [])."""
    probs, casts = softmax.output[0], []
    matmul = g.only_consumer(probs)
    if matmul is not None and matmul.op_type == "Cast" and _attr(matmul, "to") == _FLOAT:
        probs, casts = matmul.output[0], [matmul]
        matmul = g.only_consumer(probs)
    if matmul is None or matmul.op_type != "MatMul" or matmul.input[0] != probs:
        return None
    return matmul, casts


def _merged_heads(g: _Graph, pv: Any) -> tuple[Any, Any] | None:
    """``Reshape(Transpose[0,2,1,3](P·Vh), [B, S, H·D])`` as the only consumers: (Transpose, Reshape)."""
    transpose = g.only_consumer(pv.output[0])
    if (
        transpose is None
        or transpose.op_type != "Transpose"
        or list(_attr(transpose, "perm", [])) != [0, 2, 1, 3]
    ):
        return None
    reshape = g.only_consumer(transpose.output[0])
    if reshape is None or reshape.op_type != "Reshape" or g.shape_values(reshape.input[1], 3) is None:
        return None
    return transpose, reshape


def _heads_and_head_dim(g: _Graph, q: str, q_shape: np.ndarray) -> tuple[int, int] | None:
    """H and D of Q's reshape to [B, S, H, D]; one computed from shapes (0 there) comes from Q's projection."""
    heads, head_dim = int(q_shape[2]), int(q_shape[3])
    if heads > 0 and head_dim > 0:
        return heads, head_dim
    width = _projection_width(g, q)
    known = head_dim if head_dim > 0 else heads
    if width is None or known <= 0 or width % known:
        return None
    return (width // head_dim, head_dim) if head_dim > 0 else (heads, width // heads)


def _match(g: _Graph, softmax: Any) -> _Match | None:
    """The attention subgraph around ``softmax`` (the module docstring's pattern), or None."""
    if _attr(softmax, "axis", -1) not in (-1, 3):
        return None
    masked = _masked_scores(g, softmax)
    if masked is None:
        return None
    scores, mask, score_nodes = masked
    scaled = _scaled_qk(g, scores)
    if scaled is None:
        return None
    scale_node, qk, scale = scaled
    q_path = _heads_path(g, qk.input[0], [0, 2, 1, 3])
    k_path = _key_path(g, qk.input[1])
    if q_path is None or k_path is None:
        return None
    found = _probs_matmul(g, softmax)
    if found is None:
        return None
    pv, prob_casts = found
    v_path = _heads_path(g, pv.input[1], [0, 2, 1, 3])
    if v_path is None:
        return None
    output = _merged_heads(g, pv)
    if output is None:
        return None

    q, q_shape, q_nodes = q_path
    k, _, k_nodes = k_path
    v, _, v_nodes = v_path
    dims = _heads_and_head_dim(g, q, q_shape)
    if dims is None:
        return None
    nodes = [softmax, *score_nodes, scale_node, qk, *prob_casts, *q_nodes, *k_nodes, *v_nodes, pv, *output]
    return _Match(softmax, nodes, q, k, v, mask, scale, *dims, output[1].output[0])


def _packed_inputs(g: _Graph, m: _Match, index: int, new_inits: list[Any]) -> tuple[list[str], list[Any]]:
    """MultiHeadAttention inputs with Q/K/V (self) or K/V (cross) packed into one MatMul, when possible."""
    from onnx import helper, numpy_helper

    q, k, v = (g.weight_of(name) for name in (m.q, m.k, m.v))
    if k is None or v is None or k[0] != v[0] or k[1].shape != v[1].shape:
        return [m.q, m.k, m.v], []
    c, h, d = k[1].shape[0], m.heads, m.head_dim
    if k[1].shape[1] != h * d:
        return [m.q, m.k, m.v], []
    prefix = f"{m.softmax.name or 'attention'}_{index}"
    query = q if q is not None and q[0] == k[0] and q[1].shape == k[1].shape else None
    self_attention = query is not None
    parts = [query[1], k[1], v[1]] if query is not None else [k[1], v[1]]
    packed = np.stack([w.reshape(c, h, d) for w in parts], axis=2).reshape(c, h * len(parts) * d)
    weight = f"{prefix}_packed_weight"
    shape = f"{prefix}_packed_shape"
    new_inits.append(numpy_helper.from_array(packed.astype(parts[0].dtype), weight))
    new_inits.append(numpy_helper.from_array(np.array([0, 0, h, len(parts), d], dtype=np.int64), shape))
    matmul_out, packed_out = f"{prefix}_packed_matmul", f"{prefix}_packed"
    nodes = [
        helper.make_node("MatMul", [k[0], weight], [matmul_out], name=matmul_out),
        helper.make_node("Reshape", [matmul_out, shape], [packed_out], name=packed_out + "_reshape"),
    ]
    return ([packed_out, "", ""] if self_attention else [m.q, packed_out, ""]), nodes


def fuse_matmul_attention(model: Any, *, packed: bool = False) -> int:
    """Replace every matched attention subgraph of the fp32 ``onnx.ModelProto`` in place; returns how many."""
    from onnx import helper

    g = _Graph(model)
    matches: list[_Match] = []
    claimed: set[int] = set()
    for node in g.nodes:
        if node.op_type != "Softmax":
            continue
        found = _match(g, node)
        if found is None or any(id(n) in claimed for n in found.nodes):
            continue
        claimed.update(id(n) for n in found.nodes)
        matches.append(found)
    if not matches:
        return 0

    new_inits: list[Any] = []
    additions: dict[int, list[Any]] = {}  # new nodes go where the replaced output node was
    for index, m in enumerate(matches):
        inputs, extra = (
            _packed_inputs(g, m, index, new_inits) if packed and m.mask is None else ([m.q, m.k, m.v], [])
        )
        if m.mask is not None:
            inputs = inputs + ["", "", m.mask]  # bias, key_padding_mask, attention_bias
        while inputs and inputs[-1] == "":
            inputs.pop()
        fused = helper.make_node(
            "MultiHeadAttention",
            inputs,
            [m.output],
            name=f"MultiHeadAttention_{index}",
            domain=MS_DOMAIN,
            num_heads=m.heads,
            scale=m.scale,
        )
        additions[id(m.nodes[-1])] = extra + [fused]

    replaced = {id(n) for m in matches for n in m.nodes}
    kept = []
    for node in g.nodes:
        if id(node) in additions:
            kept.extend(additions[id(node)])
        elif id(node) not in replaced:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(new_inits)
    _remove_unused(model)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    log.debug("fused %d attention subgraphs into MultiHeadAttention (packed=%s)", len(matches), packed)
    return len(matches)


def _remove_unused(model: Any) -> None:
    """Drop nodes and initializers nothing reads any more (the projections a packed MatMul replaced)."""
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {name for node in model.graph.node for name in node.input} | outputs
        dead = [n for n in model.graph.node if not any(o in used for o in n.output if o)]
        if not dead:
            break
        dead_ids = {id(n) for n in dead}
        kept = [n for n in model.graph.node if id(n) not in dead_ids]
        del model.graph.node[:]
        model.graph.node.extend(kept)
    used = {name for node in model.graph.node for name in node.input} | outputs
    inits = [t for t in model.graph.initializer if t.name in used]
    if len(inits) != len(model.graph.initializer):
        del model.graph.initializer[:]
        model.graph.initializer.extend(inits)
