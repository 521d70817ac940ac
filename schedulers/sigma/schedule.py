"""The sigma (k-diffusion) family: schedules and steps written in the noise level sigma.

A sample at noise level sigma is x = x0 + sigma * eps, the variance-exploding view of a DDPM with
sigma = sqrt((1 - alpha-bar) / alpha-bar) (Karras et al., Elucidating the Design Space of
Diffusion-Based Generative Models, https://arxiv.org/abs/2206.00364). The model sees x / sqrt(sigma^2 + 1).
Samplers integrate dx/dsigma = (x - x0) / sigma from sigma_max down to 0.

Mirrors diffusers' ``scheduling_euler_discrete.py``, ``scheduling_euler_ancestral_discrete.py``,
``scheduling_heun_discrete.py``, ``scheduling_lms_discrete.py``, ``scheduling_k_dpm_2_discrete.py`` and
``scheduling_k_dpm_2_ancestral_discrete.py``; the style model is k-diffusion's ``sampling.py``
(https://github.com/crowsonkb/k-diffusion).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..math.arrays import per_sample
from ..math.sigmas import (
    beta_sigmas,
    check_one_sigma_spacing,
    exponential_sigmas,
    karras_sigmas,
    sigma_to_t,
    sigmas_from_alphas_cumprod,
)
from ..scheduler import check_choice, step_indices

TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")


def check_sigma_config(scheduler: str, config: Any, prediction_types: tuple[str, ...]) -> None:
    """Refuse option values the scheduler does not implement, before any schedule is made."""
    check_choice(scheduler, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS)
    check_choice(scheduler, "prediction_type", config.prediction_type, prediction_types)
    check_one_sigma_spacing(
        scheduler,
        use_karras_sigmas=config.get("use_karras_sigmas", False),
        use_exponential_sigmas=config.get("use_exponential_sigmas", False),
        use_beta_sigmas=config.get("use_beta_sigmas", False),
    )


def training_sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    """float32 sigma over the training timesteps, ascending in t."""
    # At zero terminal SNR sigma_max = sqrt(2^24 - 1) is a float32 near-tie: NumPy rounds it correctly
    # (4095.9998); torch's float32 sqrt gives that on some CPUs and 4096 on others, so sdrt keeps the
    # correctly rounded value and the tests compare with torch's square roots made exact.
    return sigmas_from_alphas_cumprod(alphas_cumprod)


def spaced_timesteps(
    spacing: str, num_train_timesteps: int, num_inference_steps: int, steps_offset: int = 0
) -> np.ndarray:
    """Descending float32 timesteps (Lin et al. https://arxiv.org/abs/2305.08891, Table 2)."""
    n, big_t = num_inference_steps, num_train_timesteps
    if spacing == "linspace":
        return np.linspace(0, big_t - 1, n, dtype=np.float32)[::-1].copy()
    if spacing == "leading":
        timesteps = (np.arange(0, n) * (big_t // n)).round()[::-1].astype(np.float32)
        return timesteps + np.float32(steps_offset)
    if spacing == "trailing":
        return np.arange(big_t, 0, -big_t / n).round().astype(np.float32) - np.float32(1)
    raise NotImplementedError(
        f"timestep_spacing={spacing!r} is not supported; choose one of {', '.join(map(repr, TIMESTEP_SPACINGS))}"
    )


def sigmas_at(timesteps: np.ndarray, train_sigmas: np.ndarray) -> np.ndarray:
    """Noise levels at (possibly fractional) timesteps, linear in sigma between training steps."""
    return np.interp(timesteps, np.arange(len(train_sigmas)), train_sigmas)


def respace_sigmas(
    config: Any, sigmas: np.ndarray, num_inference_steps: int, *, use_config_range: bool = True
) -> np.ndarray | None:
    """The Karras / exponential / beta spacing the config asks for, or None when it asks for none.

    The range is ``config.sigma_min``/``sigma_max`` where set (and ``use_config_range``), else the
    first and last of ``sigmas``.
    """
    get = config.get if use_config_range else (lambda key: None)
    lo, hi = get("sigma_min"), get("sigma_max")
    lo = float(sigmas[-1]) if lo is None else lo
    hi = float(sigmas[0]) if hi is None else hi
    if config.get("use_karras_sigmas"):
        return karras_sigmas(lo, hi, num_inference_steps)
    if config.get("use_exponential_sigmas"):
        return exponential_sigmas(lo, hi, num_inference_steps)
    if config.get("use_beta_sigmas"):
        return beta_sigmas(lo, hi, num_inference_steps)
    return None


def timesteps_for_sigmas(sigmas: np.ndarray, train_sigmas: np.ndarray) -> np.ndarray:
    """Fractional training timesteps of noise levels (``train_sigmas`` ascending in t)."""
    return sigma_to_t(np.asarray(sigmas), np.log(train_sigmas))


def inference_schedule(
    config: Any, train_sigmas: np.ndarray, num_inference_steps: int, num_train_timesteps: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Timesteps by ``config.timestep_spacing`` and their sigmas, respaced (Karras etc.) when configured.

    With respacing, the timesteps are those of the new sigmas (fractional, float64).
    """
    timesteps = spaced_timesteps(
        config.timestep_spacing,
        num_train_timesteps or config.num_train_timesteps,
        num_inference_steps,
        config.steps_offset,
    )
    sigmas = sigmas_at(timesteps, train_sigmas)
    respaced = respace_sigmas(config, sigmas, num_inference_steps)
    if respaced is None:
        return timesteps, sigmas
    return timesteps_for_sigmas(respaced, train_sigmas), respaced


def init_noise_sigma(sigmas: np.ndarray, spacing: str) -> float:
    """Standard deviation of the starting noise: sigma_max, or sqrt(sigma_max^2 + 1) for leading spacing."""
    sigma_max = float(np.max(sigmas))
    if spacing in ("linspace", "trailing"):
        return sigma_max
    return (sigma_max**2 + 1) ** 0.5


# Noise levels are float32 numbers (as diffusers' sigma tensors are); the scalar coefficients below are
# computed in float32 like diffusers' 0-d tensor arithmetic, then enter the array math as Python floats,
# so the sample keeps its dtype. At zero terminal SNR (sigma = 4096) float64 coefficients would differ
# visibly from diffusers' results.


def scale_model_input(sample: Any, sigma: float) -> Any:
    """The model input x / sqrt(sigma^2 + 1): unit variance for unit-variance data."""
    s = np.float32(sigma)
    return sample / float((s**2 + 1) ** 0.5)


def denoised(model_output: Any, sample: Any, sigma: float, prediction_type: str) -> Any:
    """The model's estimate of x0 at noise level ``sigma``, for each prediction type."""
    s = np.float32(sigma)
    if prediction_type == "epsilon":
        return sample - float(s) * model_output
    if prediction_type == "v_prediction":
        return model_output * float(-s / (s**2 + 1) ** 0.5) + sample / float(s**2 + 1)
    if prediction_type in ("sample", "original_sample"):
        return model_output
    raise NotImplementedError(f"prediction_type={prediction_type!r} is not supported")


def to_d(sample: Any, sigma: float, denoised: Any) -> Any:
    """dx/dsigma of the probability-flow ODE (k-diffusion's ``to_d``)."""
    return (sample - denoised) / float(sigma)


def ancestral_sigmas(sigma_from: Any, sigma_to: Any) -> tuple[Any, Any]:
    """(sigma_down, sigma_up) in float32: step deterministically to sigma_down, then add noise of std sigma_up."""
    sigma_from, sigma_to = np.float32(sigma_from), np.float32(sigma_to)
    sigma_up = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def lms_coefficient(sigmas: np.ndarray, order: int, t: int, current_order: int) -> float:
    """Integral from sigmas[t] to sigmas[t+1] of the Lagrange basis polynomial of sigmas[t - current_order]
    over the nodes sigmas[t], ..., sigmas[t - order + 1].

    The integrand has degree order - 1, so Gauss-Legendre with order // 2 + 1 nodes is exact.
    """
    nodes = [float(sigmas[t - k]) for k in range(order)]
    own = nodes[current_order]
    others = [s for k, s in enumerate(nodes) if k != current_order]
    a, b = float(sigmas[t]), float(sigmas[t + 1])
    x, w = np.polynomial.legendre.leggauss(order // 2 + 1)
    tau = (b - a) / 2 * x + (a + b) / 2
    basis = np.prod([(tau - s) / (own - s) for s in others], axis=0) if others else np.ones_like(tau)
    return float((b - a) / 2 * np.sum(w * basis))


def interleave(values: np.ndarray) -> np.ndarray:
    """[v0, v1, v1, v2, v2, ..., v_last]: each value after the first twice, for two-stage samplers."""
    return np.concatenate([values[:1], np.repeat(values[1:], 2), values[-1:]])


def log_midpoints(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """exp(lerp(log a, log b, 1/2)) in float32, as torch computes it (nan or 0 where a or b is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a, log_b = np.log(a.astype(np.float32)), np.log(b.astype(np.float32))
        return np.exp(log_b - (log_b - log_a) * np.float32(0.5))


def add_noise(scheduler: Any, original_samples: Any, noise: Any, timesteps: Any) -> Any:
    """x = x0 + sigma(t) * noise."""
    sigma = scheduler.sigmas[step_indices(scheduler, timesteps)]
    return original_samples + noise * per_sample(sigma, original_samples)
