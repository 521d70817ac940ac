"""Noise levels sigma = sqrt((1 - alpha-bar) / alpha-bar), the alpha-bar that keeps them finite, and the
ways of spacing them.

- Karras sigmas: Karras et al., Elucidating the Design Space of Diffusion-Based Generative Models,
  https://arxiv.org/abs/2206.00364 (eq. 5, rho = 7)
- beta sigmas: Lee et al., Beta Sampling is All You Need, https://arxiv.org/abs/2407.12173
Mirrors ``_convert_to_karras`` / ``_convert_to_exponential`` / ``_convert_to_beta`` / ``_sigma_to_t``
in diffusers' ``scheduling_euler_discrete.py``.
"""

from __future__ import annotations

import math

import numpy as np

from .betas import alphas_cumprod_from_betas

# alpha-bar of the last training timestep at zero terminal SNR (0 would make sigma infinite)
ZERO_SNR_ALPHA_BAR = 2**-24


def sigmas_from_alphas_cumprod(alphas_cumprod: np.ndarray) -> np.ndarray:
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


def training_alphas_cumprod(betas: np.ndarray, zero_snr: bool = False) -> np.ndarray:
    """alpha-bar over the training timesteps (float32), kept above 0 at zero terminal SNR."""
    alphas_cumprod = alphas_cumprod_from_betas(betas)
    if zero_snr:
        # sigma would be infinite at alpha-bar = 0; diffusers keeps it just above.
        alphas_cumprod[-1] = ZERO_SNR_ALPHA_BAR
    return alphas_cumprod


def karras_sigmas(
    sigma_min: float, sigma_max: float, num_inference_steps: int, rho: float = 7.0
) -> np.ndarray:
    """Noise levels evenly spaced in sigma^(1/rho), from ``sigma_max`` down to ``sigma_min``."""
    ramp = np.linspace(0, 1, num_inference_steps)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho


def exponential_sigmas(sigma_min: float, sigma_max: float, num_inference_steps: int) -> np.ndarray:
    """Noise levels evenly spaced in log sigma."""
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), num_inference_steps))


def beta_sigmas(
    sigma_min: float, sigma_max: float, num_inference_steps: int, alpha: float = 0.6, beta: float = 0.6
) -> np.ndarray:
    """Noise levels at the quantiles of a Beta(alpha, beta) distribution (needs SciPy, as diffusers does)."""
    try:
        from scipy.special import betaincinv
    except ImportError as e:
        raise ImportError("use_beta_sigmas=True needs SciPy: pip install scipy") from e
    quantiles = betaincinv(alpha, beta, 1 - np.linspace(0, 1, num_inference_steps))
    return sigma_min + quantiles * (sigma_max - sigma_min)


def sigma_to_t(sigma: np.ndarray, log_sigmas: np.ndarray) -> np.ndarray:
    """Fractional training timestep of each sigma, interpolating linearly in log sigma."""
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low_idx = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    t = (1 - w) * low_idx + w * high_idx
    return t.reshape(sigma.shape)


def check_one_sigma_spacing(
    scheduler: str, *, use_karras_sigmas: bool, use_exponential_sigmas: bool, use_beta_sigmas: bool
) -> None:
    if sum(map(bool, (use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas))) > 1:
        raise ValueError(
            f"{scheduler}: use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas exclude each other; set at most one"
        )
