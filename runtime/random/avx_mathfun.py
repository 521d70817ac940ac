"""torch's ``avx_mathfun.h`` log and sincos, bit for bit in NumPy float32.

On x86-64, torch draws ``randn`` of 16 or more float32 values through ``normal_fill_16_AVX2``, which
calls ``log256_ps`` and ``sincos256_ps`` (Cephes polynomials by J. Pommier / G. Garberoglio) compiled by
GCC with fused multiply-adds where it contracts ``a * b + c``. These functions replay the same float32
operations, in the same order, with the same contractions. A fused multiply-add is computed in float64
and rounded once to float32 (exact product; the sum can be rounded twice, which changes a result only
on exact float32 ties: none in 10^6 tested draws).
"""

from __future__ import annotations

import numpy as np

f32 = np.float32

_LOG_P = [
    f32(v)
    for v in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
]
_LOG_Q1, _LOG_Q2 = f32(-2.12194440e-4), f32(0.693359375)
_SQRTHF = f32(0.707106781186547524)
_MIN_NORM_POS = np.array(0x00800000, dtype=np.uint32).view(f32)
_DP1, _DP2, _DP3 = f32(-0.78515625), f32(-2.4187564849853515625e-4), f32(-3.77489497744594108e-8)
_SIN_P = (f32(-1.9515295891e-4), f32(8.3321608736e-3), f32(-1.6666654611e-1))
_COS_P = (f32(2.443315711809948e-005), f32(-1.388731625493765e-003), f32(4.166664568298827e-002))
_FOUR_OVER_PI = f32(1.27323954473516)


def fma32(a: np.ndarray, b: np.ndarray | np.float32, c: np.ndarray | np.float32) -> np.ndarray:
    """``a * b + c`` rounded once to float32 (a fused multiply-add)."""
    return (np.asarray(a, np.float64) * np.float64(b) + np.asarray(c, np.float64)).astype(f32)


def log256_ps(x: np.ndarray) -> np.ndarray:
    """Natural log of positive float32 values, as torch's ``log256_ps``."""
    x = np.maximum(np.asarray(x, f32), _MIN_NORM_POS)
    bits = x.view(np.uint32)
    exponent = (bits >> np.uint32(23)).astype(np.int32)
    x = ((bits & np.uint32(0x807FFFFF)) | np.array(0.5, f32).view(np.uint32)).view(
        f32
    )  # mantissa in [0.5, 1)
    e = (exponent - 127).astype(f32) + f32(1)
    below = x < _SQRTHF  # x < sqrt(1/2): e -= 1, x = 2x - 1; else x = x - 1
    x = (x - f32(1)) + np.where(below, x, f32(0))
    e = e - np.where(below, f32(1), f32(0))
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = fma32(y, x, p)
    y = y * x
    y = fma32(y, z, e * _LOG_Q1)
    y = y - z * f32(0.5)
    return (x + y) + e * _LOG_Q2


def sincos256_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sine and cosine of float32 values, as torch's ``sincos256_ps``."""
    x = np.asarray(x, f32)
    sign_sin = np.signbit(x)
    x = np.abs(x)
    j = (x * _FOUR_OVER_PI).astype(np.int32)  # truncation, then j = (j + 1) & ~1
    j = (j + 1) & ~1
    y = j.astype(f32)
    sign_sin = sign_sin ^ ((j & 4) != 0)
    sign_cos = (~(j - 2) & 4) != 0
    use_sin_poly = (j & 2) == 0
    x = fma32(y, _DP1, x)  # extended precision modular arithmetic: x - y * pi/4
    x = fma32(y, _DP2, x)
    x = fma32(y, _DP3, x)
    z = x * x
    cos_poly = fma32(fma32(np.full_like(x, _COS_P[0]), z, _COS_P[1]), z, _COS_P[2]) * z
    cos_poly = fma32(cos_poly, z, -(z * f32(0.5))) + f32(1)
    sin_poly = fma32(fma32(np.full_like(x, _SIN_P[0]), z, _SIN_P[1]), z, _SIN_P[2]) * z
    sin_poly = fma32(sin_poly, x, x)
    sin = np.where(use_sin_poly, sin_poly, cos_poly)
    cos = np.where(use_sin_poly, cos_poly, sin_poly)
    return np.where(sign_sin, -sin, sin), np.where(sign_cos, -cos, cos)
