"""torch, only where a caller asks for it (``output_type="pt"``); the runtime never needs it otherwise.

Torch objects a caller passes in (generators, tensors) are recognised by their type and used through their
own methods; this module gives torch itself only to a call that asks for a torch result.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError


def torch_module(what: str) -> ModuleType:
    """torch, already imported by the caller or imported now; a clear error where it is not installed."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    try:
        if importlib.util.find_spec("torch") is not None:
            return importlib.import_module("torch")
    except ImportError:  # installed but broken, or blocked
        pass
    raise InputError(
        f"{what} needs torch, which cannot be imported here; use output_type='np' (NumPy arrays)"
    )


def to_torch(array: Any) -> Any:
    """A torch tensor of ``array``: NumPy shares its memory (CPU); CuPy goes over DLPack (stays on the GPU)."""
    torch = torch_module("output_type='pt'")
    if hasattr(array, "__cuda_array_interface__"):
        return torch.from_dlpack(array)
    return torch.from_numpy(np.ascontiguousarray(array))
