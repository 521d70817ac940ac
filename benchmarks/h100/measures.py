"""The measurements: milliseconds per call, median milliseconds, and image PSNR."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def per_call_ms(fn: Callable[[], Any], sync: Callable[[], None], *, warmup: int, iters: int) -> float:
    """Milliseconds per call over ``iters`` back-to-back calls (synchronised once before and after)."""
    for _ in range(warmup):
        fn()
    sync()
    started = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - started) * 1000 / iters


def median_ms(fn: Callable[[], Any], sync: Callable[[], None], *, repeats: int) -> float:
    """Median wall time of ``repeats`` synchronised calls, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def psnr01(actual: np.ndarray, expected: np.ndarray) -> float:
    """PSNR of images in [0, 1] (peak 1)."""
    mse = float(np.mean((actual.astype(np.float64) - expected.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
