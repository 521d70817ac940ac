"""Arrays in a pipeline's array module, and the batch arithmetic of diffusers' pipelines."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError


def to_xp(xp: ModuleType, array: Any, dtype: Any = np.float32) -> Any:
    """``array`` in ``xp`` (NumPy or CuPy) as ``dtype``; host data is copied to the device once. A torch
    tensor (diffusers-style ``latents=torch.randn(...)``) is read through its own methods."""
    if type(array).__module__.split(".")[0] == "torch":
        array = array.detach().cpu().float().numpy()
    if xp is np and hasattr(array, "get"):
        array = array.get()
    return xp.asarray(array, dtype=dtype)


def repeat_rows(xp: ModuleType, array: Any, times: int) -> Any:
    """Each row ``times`` times in a row (torch's ``repeat(1, n, 1).view(b * n, ...)``)."""
    return array if times == 1 else xp.repeat(array, times, axis=0)


def repeat_to_batch(xp: ModuleType, array: Any, batch_size: int, what: str) -> Any:
    """Repeat a batch of ``n`` to ``batch_size`` (a multiple of ``n``), whole batch after whole batch."""
    n = array.shape[0]
    if n == batch_size:
        return array
    if batch_size % n != 0:
        raise InputError(f"Cannot duplicate `{what}` of batch size {n} to effective batch_size {batch_size}.")
    return xp.concatenate([array] * (batch_size // n), axis=0)
