"""Array-module helpers: schedulers compute with whatever module the caller's arrays come from."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def array_module(x: Any) -> ModuleType:
    """NumPy for NumPy arrays, CuPy for CuPy arrays (without importing CuPy otherwise)."""
    if type(x).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def default_generator(like: Any) -> Any:
    """A fresh, unseeded generator of the module ``like`` belongs to."""
    xp = array_module(like)
    return xp.random.default_rng()


def draw_noise(generator: Any, shape: tuple[int, ...], like: Any) -> Any:
    """Standard normal noise of ``shape``, drawn once from ``generator``, in ``like``'s module and dtype.

    Drawing goes through ``generator.standard_normal(size=shape)`` so that a caller (or a test) can
    hand in any generator, including one that replays diffusers' noise.
    """
    if generator is None:
        generator = default_generator(like)
    noise = generator.standard_normal(size=tuple(shape))
    xp = array_module(like)
    if array_module(noise) is not xp:
        raise TypeError(
            f"the generator gave {type(noise).__module__} arrays but the sample is a {xp.__name__} array: "
            "pass a generator of the same array module (numpy.random.Generator or cupy.random.Generator)"
        )
    return noise.astype(like.dtype, copy=False)


def upcast(x: Any) -> Any:
    """float16/bfloat16 → float32 for the step arithmetic; float32/float64 unchanged (as diffusers does)."""
    return x if x.dtype.itemsize >= 4 else x.astype("float32")


def per_sample(values: np.ndarray, like: Any) -> Any:
    """Host values, one per batch item, as a column broadcastable against ``like`` (and of its dtype)."""
    xp = array_module(like)
    return xp.asarray(np.asarray(values), dtype=like.dtype).reshape((-1,) + (1,) * (like.ndim - 1))
