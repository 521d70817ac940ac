"""Dynamic thresholding of the predicted x_0 (Imagen: Saharia et al., https://arxiv.org/abs/2205.11487, §2.3).

At each step, s is a percentile of |x_0| per image; if s > 1, x_0 is clipped to [-s, s] and divided by s.
"""

from __future__ import annotations

from typing import Any

from .arrays import array_module


def threshold_sample(sample: Any, *, dynamic_thresholding_ratio: float, sample_max_value: float) -> Any:
    xp = array_module(sample)
    dtype = sample.dtype
    batch, channels, *rest = sample.shape
    flat = sample.astype(xp.float32) if dtype.itemsize < 4 else sample
    flat = flat.reshape(batch, -1)
    s = xp.quantile(xp.abs(flat), dynamic_thresholding_ratio, axis=1)
    s = xp.clip(s, 1, sample_max_value)[:, None]
    flat = xp.clip(flat, -s, s) / s
    return flat.reshape(batch, channels, *rest).astype(dtype, copy=False)
