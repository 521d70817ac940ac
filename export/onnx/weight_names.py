"""Which ONNX initializer holds each Linear / Conv weight of the model: the map run-time LoRA needs.

The exporter names a weight after its parameter only where the graph uses it as it is (Conv, Gemm);
a MatMul's weight is folded into a transposed constant named ``onnx::MatMul_NNN``. So the map is made
by value, as NVIDIA's demo recovers it: a digest of each parameter (as stored, and transposed; fp32 and
fp16) against a digest of each initializer of the same shape. The map names, for each graph file of
the component, ``parameter -> [initializer, layout]`` with layout ``"="`` (as the parameter) or ``"T"``
(transposed). Parameters the graph does not hold unchanged (QKV packed by a fusion) are left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
LORA_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")  # what LoRA files hold weights for
Digest = tuple[str, tuple[int, ...], bytes]  # dtype, shape, blake2b of the bytes


def weight_digests(model: Any, dtypes: tuple[str, ...]) -> dict[str, list[tuple[Digest, str]]]:
    """``parameter name -> [(digest, layout)]`` for the weight of every Linear and Conv2d of ``model``,
    in each of ``dtypes`` (numpy names), as stored and (2-D) transposed."""
    import torch

    digests: dict[str, list[tuple[Digest, str]]] = {}
    for module_name, module in model.named_modules():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        weight = module.weight.detach().cpu().float().numpy()
        layouts = [("=", weight)] + ([("T", weight.T)] if weight.ndim == 2 else [])
        digests[f"{module_name}.weight"] = [
            (_digest(np.ascontiguousarray(array, dtype)), layout)
            for dtype in dtypes
            for layout, array in layouts
        ]
    return digests


def map_graph(graph: Path, digests: dict[str, list[tuple[Digest, str]]]) -> dict[str, list[str]]:
    """``parameter -> [initializer, layout]`` for the parameters whose values ``graph`` holds."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph), load_external_data=False)
    wanted = {(d[0], d[1]) for entries in digests.values() for d, _ in entries}
    owner: dict[Digest, str] = {}
    for tensor in model.graph.initializer:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).name
        if (dtype, tuple(tensor.dims)) in wanted:
            owner.setdefault(_digest(numpy_helper.to_array(tensor, base_dir=str(graph.parent))), tensor.name)
    return {
        param: [owner[digest], layout]
        for param, entries in digests.items()
        for digest, layout in entries
        if digest in owner
    }


def write_weight_map(
    bundle_dir: Path, name: str, graphs: list[str], digests: dict[str, list[tuple[Digest, str]]]
) -> str:
    """``onnx/<name>.weights.json`` for the bundle's ``graphs`` (bundle-relative); its bundle-relative path."""
    maps = {graph: map_graph(bundle_dir / graph, digests) for graph in graphs}
    for graph, found in maps.items():
        missing = len(digests) - len(found)
        note = f" ({missing} fused or folded: no run-time LoRA on them)" if missing else ""
        log.info("%s: %d of %d weights located in %s%s", name, len(found), len(digests), graph, note)
    file = f"onnx/{name}.weights.json"
    text = json.dumps(
        {"format": FORMAT, "parameters": sorted(digests), "graphs": maps}, separators=(",", ":")
    )
    (bundle_dir / file).write_text(text)
    return file


def _digest(array: np.ndarray) -> Digest:
    array = np.ascontiguousarray(array)
    return array.dtype.name, tuple(array.shape), hashlib.blake2b(array.data, digest_size=16).digest()
