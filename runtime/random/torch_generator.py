"""TorchCompatibleGenerator: ``torch.Generator("cpu").manual_seed(s)`` + ``torch.randn`` in NumPy.

People copy a seed from a diffusers script and expect the same picture, so the initial latents are
drawn the way torch's CPU generator draws them (ATen's ``CPUGeneratorImpl`` and ``normal_kernel``):

- the engine is a 32-bit Mersenne Twister (mt19937) seeded with the low 32 bits of the seed by
  the standard ``init_genrand``; NumPy's ``MT19937`` bit generator is given that state;
- a float32 uniform is ``(next32 & 0xFFFFFF) * 2**-24``; a float64 one is
  ``((hi32 << 32 | lo32) & (2**53 - 1)) * 2**-53``;
- tensors of 16 elements or more: every element first gets a uniform, then each block of 16 is
  turned into normals by Box-Muller (``u1 = 1 - x[j]``, ``u2 = x[j + 8]``,
  ``x[j] = r cos θ``, ``x[j + 8] = r sin θ``, ``r = sqrt(-2 log u1)``, ``θ = 2π u2``); when the size is
  not a multiple of 16, the last 16 elements are drawn again from 16 fresh uniforms and transformed.
  For float32, torch on x86-64 (AVX2 and AVX-512 CPUs) computes log/sin/cos with the float32
  polynomials of ``avx_mathfun.h`` (``kernel="avx2"``, the default, bit-exact: see
  :mod:`.avx_mathfun`); other CPUs (ARM, for example Apple silicon) use ``logf``/``cosf``/``sinf``
  (``kernel="scalar"``, emulated by rounding float64 results, within a float32 ulp or so);
- fewer than 16 elements: one element at a time, by ``normal_distribution<double>``: two float64
  uniforms give ``r cos θ`` and ``r sin θ`` (``r = sqrt(-2 log(1 - u2))``, ``θ = 2π u1``); the sine
  is kept in the generator and returned by the next such draw (also across calls, until reseeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError, InputTypeError

from .avx_mathfun import log256_ps, sincos256_ps

_MT_N = 624


def mt19937_state(seed: int) -> np.ndarray:
    """The 624-word state of ``init_genrand(seed & 0xFFFFFFFF)`` (torch's and the reference mt19937's)."""
    key = np.empty(_MT_N, dtype=np.uint32)
    value = seed & 0xFFFFFFFF
    key[0] = value
    for i in range(1, _MT_N):
        value = (1812433253 * (value ^ (value >> 30)) + i) & 0xFFFFFFFF
        key[i] = value
    return key


class TorchCompatibleGenerator:
    """Draws what ``torch.Generator("cpu").manual_seed(seed)`` draws, with NumPy.

    ``randn(shape)`` equals ``torch.randn(shape, generator=g)``; consecutive calls continue the stream as
    torch's generator does. ``standard_normal(size)`` is the same draw (float32 by default, as torch's
    default dtype; NumPy's ``Generator`` would default to float64), so schedulers can take it in place of
    a ``numpy.random.Generator``.
    """

    def __init__(self, seed: int = 67280421310721, kernel: str = "avx2") -> None:
        if kernel not in ("avx2", "scalar"):
            raise InputError(
                f"kernel must be 'avx2' (torch on x86-64) or 'scalar' (other CPUs), got {kernel!r}"
            )
        self.kernel = kernel
        self._bits = np.random.MT19937(0)
        self._cached_normal: float | None = None
        self._seed = 0
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> TorchCompatibleGenerator:
        """Reseed (only the low 32 bits reach torch's mt19937) and forget the cached normal, like torch."""
        seed = int(seed)
        if not -(2**63) <= seed < 2**64:
            raise InputError(f"seed must be in [-2**63, 2**64), got {seed}")
        self._seed = seed & 0xFFFFFFFFFFFFFFFF
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": mt19937_state(self._seed), "pos": _MT_N},
        }
        self._cached_normal = None
        return self

    def initial_seed(self) -> int:
        return self._seed

    def randn(self, *shape: int | Sequence[int], dtype: type | np.dtype = np.float32) -> np.ndarray:
        """``torch.randn(shape, generator=self, dtype=dtype)`` for float32 or float64."""
        sizes: Sequence[Any] = shape
        if len(shape) == 1 and not isinstance(shape[0], int | np.integer):
            sizes = tuple(shape[0])  # randn((2, 3)) as well as randn(2, 3)
        dims = tuple(int(d) for d in sizes)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise InputTypeError(f"TorchCompatibleGenerator draws float32 or float64, not {dtype}")
        size = int(np.prod(dims, dtype=np.int64))
        if size >= 16:
            values = self._normal_fill(size, dtype)
        else:
            values = np.array([self._scalar_normal() for _ in range(size)], dtype=np.float64)
        return values.astype(dtype).reshape(dims)

    def standard_normal(
        self, size: int | Sequence[int] | None = None, dtype: type | np.dtype = np.float32
    ) -> np.ndarray | float:
        """NumPy-style name for :meth:`randn` (``size=None`` gives one float)."""
        if size is None:
            return float(self.randn(1, dtype=dtype)[0])
        dims = (size,) if isinstance(size, int | np.integer) else tuple(size)
        return self.randn(dims, dtype=dtype)

    def _raw32(self, count: int) -> np.ndarray:
        return self._bits.random_raw(count).astype(np.uint64)

    def _uniform(self, count: int, dtype: np.dtype) -> np.ndarray:
        if dtype == np.float32:
            return (self._raw32(count) & 0xFFFFFF).astype(np.float64) * 2.0**-24
        raw = self._raw32(2 * count).reshape(count, 2)
        bits = ((raw[:, 0] << np.uint64(32)) | raw[:, 1]) & np.uint64((1 << 53) - 1)
        return bits.astype(np.float64) * 2.0**-53

    def _normal_fill(self, size: int, dtype: np.dtype) -> np.ndarray:
        data = self._uniform(size, dtype)
        full = size - size % 16
        data[:full] = _box_muller_16(data[:full], dtype, self.kernel)
        if size % 16:
            data[size - 16 :] = _box_muller_16(self._uniform(16, dtype), dtype, self.kernel)
        return data

    def _scalar_normal(self) -> float:
        if self._cached_normal is not None:
            value, self._cached_normal = self._cached_normal, None
            return value
        u1, u2 = self._uniform(2, np.dtype(np.float64))
        radius = np.sqrt(-2.0 * np.log1p(-u2))
        theta = 2.0 * np.pi * u1
        self._cached_normal = float(radius * np.sin(theta))
        return float(radius * np.cos(theta))


def _box_muller_16(uniform: np.ndarray, dtype: np.dtype, kernel: str) -> np.ndarray:
    """ATen's Box-Muller over consecutive blocks of 16 uniforms (pairs j, j + 8)."""
    blocks = uniform.reshape(-1, 2, 8)
    out = np.empty_like(blocks)
    if dtype == np.float32 and kernel == "avx2":  # normal_fill_16_AVX2
        u1 = np.float32(1) - blocks[:, 0].astype(np.float32)
        radius = np.sqrt(np.float32(-2) * log256_ps(u1))
        sin, cos = sincos256_ps(np.float32(2.0 * np.pi) * blocks[:, 1].astype(np.float32))
        out[:, 0] = radius * cos
        out[:, 1] = radius * sin
    elif dtype == np.float32:  # normal_fill_16<float>: logf, sqrtf, cosf, sinf, each rounded to float32
        f32 = np.float32
        u1 = (1.0 - blocks[:, 0].astype(f32)).astype(np.float64)
        radius = np.sqrt((-2.0 * np.log(u1).astype(f32)).astype(np.float64)).astype(f32)
        theta = (2.0 * np.pi * blocks[:, 1]).astype(f32).astype(np.float64)
        out[:, 0] = radius * np.cos(theta).astype(f32)
        out[:, 1] = radius * np.sin(theta).astype(f32)
    else:  # normal_fill_16<double>
        radius = np.sqrt(-2.0 * np.log(1.0 - blocks[:, 0]))
        theta = 2.0 * np.pi * blocks[:, 1]
        out[:, 0] = radius * np.cos(theta)
        out[:, 1] = radius * np.sin(theta)
    return out.reshape(-1)
