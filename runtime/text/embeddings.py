"""Textual-inversion embeddings read without torch: safetensors files in diffusers' format (one key, the
token) and A1111's (``emb_params``, several vectors). Pickles (``.pt``, ``.bin``) need torch to read and
are left to ``build-engine --textual-inversion``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.tensor_files import read_safetensors


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
        return token, _checked(path, token, tensors[key])
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
    return token, _checked(path, token, vectors)


def _checked(path: Path, token: str, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as [n, width], refused (naming the file and token) when they are not vectors, or hold NaN,
    Inf or a vector of zeros: any of those would break every prompt using the token."""
    vectors = np.atleast_2d(vectors)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise InputError(
            f"textual inversion {path} ({token}): the embedding has shape {tuple(vectors.shape)}, not [vectors, "
            "width]; the file is not a textual-inversion embedding"
        )
    if not np.issubdtype(vectors.dtype, np.floating) or not np.isfinite(vectors).all():
        problem = (
            "NaN or Inf values" if np.issubdtype(vectors.dtype, np.floating) else f"{vectors.dtype} values"
        )
    elif (np.abs(vectors).max(axis=1) == 0).any():
        problem = "a vector of zeros"
    else:
        return vectors
    raise InputError(
        f"textual inversion {path} ({token}): the embedding holds {problem}, which would break every prompt "
        "using it; the file is damaged or was not trained, use another (nothing was loaded)"
    )
