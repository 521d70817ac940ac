"""Shared math of the variance-exploding schedulers (x_t = x_0 + sigma eps).

- Score SDE VE: Song et al., Score-Based Generative Modeling through SDEs, https://arxiv.org/abs/2011.13456
- Karras VE: Karras et al., Elucidating the Design Space of Diffusion-Based Generative Models,
  https://arxiv.org/abs/2206.00364 (Algorithm 2)
- Consistency models: Song et al., Consistency Models, https://arxiv.org/abs/2303.01469
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..math.arrays import array_module, draw_noise
from ..math.betas import linspace_f32


def float32_noise(generator: Any, shape: tuple[int, ...], like: Any) -> Any:
    """Standard normal noise in ``like``'s array module but float32, whatever ``like``'s dtype: diffusers draws
    these schedulers' correction and churn noise without a dtype (so in float32) and computes with it so."""
    xp = array_module(like)
    return draw_noise(generator, shape, like=xp.zeros((), dtype=np.float32))


def geometric_sigmas(sigma_min: float, sigma_max: float, steps: int) -> np.ndarray:
    """exp of ``steps`` evenly spaced log sigmas from sigma_min to sigma_max, in float32 as diffusers has them.

    The exponential is taken in float64 and rounded once: torch's float32 exp agrees with that far more often
    than NumPy's float32 exp does."""
    log_sigmas = linspace_f32(math.log(sigma_min), math.log(sigma_max), steps)
    return np.exp(log_sigmas.astype(np.float64)).astype(np.float32)


def karras_sigmas(ramp: np.ndarray, sigma_min: float, sigma_max: float, rho: float) -> np.ndarray:
    """EDM's schedule (Karras et al. eq. 5): ramp 0 -> sigma_max, 1 -> sigma_min, evenly spaced in sigma^(1/rho)."""
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho


def add_sigma_noise(original_samples: Any, noise: Any, sigmas: np.ndarray) -> Any:
    """x_0 + sigma noise, one sigma per batch item."""
    xp = array_module(original_samples)
    sigma = xp.asarray(np.asarray(sigmas), dtype=original_samples.dtype).reshape(
        (-1,) + (1,) * (original_samples.ndim - 1)
    )
    return original_samples + noise * sigma
