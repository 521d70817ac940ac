"""Textual-inversion embeddings read without torch: safetensors files in diffusers' format (one key, the
token) and A1111's (``emb_params``, several vectors). Pickles (``.pt``, ``.bin``) need torch to read and
are left to ``build-engine --textual-inversion``."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from sdrt.runtime.errors import InputError

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a float32 NumPy array (bf16 widened exactly)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
    except (OSError, struct.error, ValueError) as error:
        raise InputError(f"{path} is not a readable safetensors file ({error})") from error
    tensors = {}
    body = memoryview(data)[8 + size :]
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = body[start:end]
        if info["dtype"] == "BF16":
            values = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _DTYPES:
            values = np.frombuffer(raw, _DTYPES[info["dtype"]]).astype(np.float32)
        else:
            raise InputError(f"{path}: tensor {name!r} is {info['dtype']}, not a float embedding")
        tensors[name] = values.reshape(info["shape"])
    return tensors


def textual_inversion_vectors(
    path: str | os.PathLike[str], token: str | None, *, key: str | None = None
) -> tuple[str, np.ndarray]:
    """(token, vectors [n, width]) of an embedding file, diffusers' rules for the token: the file's own key,
    or ``token`` (which an A1111 file needs, having none). ``key``: the tensor to take (SDXL files hold
    ``clip_l`` and ``clip_g``, one per text encoder)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"textual inversion {path}: no such file")
    if path.suffix.lower() != ".safetensors":
        raise InputError(
            f"textual inversion {path}: sdrt's runtime reads .safetensors embeddings (a {path.suffix} file is a "
            "pickle, which needs torch); convert it, or build the bundle with build-engine --textual-inversion"
        )
    tensors = read_safetensors(path)
    if key is not None:
        if key not in tensors or not token:
            raise InputError(
                f"textual inversion {path}: an SDXL embedding holds clip_l and clip_g tensors and takes a token "
                f"(token='<name>'); this file has {', '.join(sorted(tensors))}"
            )
        return token, np.atleast_2d(tensors[key])
    if "emb_params" in tensors:
        vectors, own = tensors["emb_params"], None
    elif len(tensors) == 1:
        own, vectors = next(iter(tensors.items()))
    else:
        raise InputError(
            f"textual inversion {path}: expected one tensor (diffusers) or 'emb_params' (A1111), found "
            f"{', '.join(sorted(tensors)[:5])}"
        )
    token = token or own
    if not token:
        raise InputError(f"textual inversion {path} names no token (A1111 format): pass token='<name>'")
    return token, np.atleast_2d(vectors)
