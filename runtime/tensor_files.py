"""safetensors files read with NumPy alone (the runtime has no torch): tensors and the header's metadata."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from sdrt.runtime.errors import InputError

_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
}


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a float32 NumPy array (bf16 widened exactly, integers converted)."""
    return read_safetensors_with_metadata(path)[0]


def read_safetensors_with_metadata(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (as ``read_safetensors``) and the header's ``__metadata__`` strings."""
    path = Path(path)
    try:
        data = path.read_bytes()
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (OSError, struct.error, ValueError) as error:
        raise InputError(f"{path} is not a readable safetensors file ({error})") from error
    tensors = {}
    body = memoryview(data)[8 + size :]
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = body[start:end]
        if info["dtype"] != "BF16" and info["dtype"] not in _DTYPES:
            raise InputError(f"{path}: tensor {name!r} is {info['dtype']}, not a number tensor")
        try:
            if info["dtype"] == "BF16":
                values = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                values = np.frombuffer(raw, _DTYPES[info["dtype"]]).astype(np.float32)
            tensors[name] = values.reshape(info["shape"])
        except ValueError as error:
            raise InputError(f"{path}: tensor {name!r} is cut short; the file is truncated") from error
    return tensors, dict(header.get("__metadata__") or {})
