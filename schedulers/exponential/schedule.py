"""Shared math of the exponential-integrator ODE solvers: DPM-Solver, DPM-Solver++, DEIS and UniPC.

The solvers work in the half log-SNR lambda_t = log(alpha_t / sigma_t) of the variance-preserving
process x_t = alpha_t x_0 + sigma_t eps, where sigma (the "k-diffusion" noise level) gives
alpha_t = 1 / sqrt(1 + sigma^2) and sigma_t = sigma alpha_t.

- DPM-Solver: Lu et al., https://arxiv.org/abs/2206.00927
- DPM-Solver++: Lu et al., https://arxiv.org/abs/2211.01095
- DEIS: Zhang & Chen, https://arxiv.org/abs/2204.13902
- UniPC: Zhao et al., https://arxiv.org/abs/2302.04867

Mirrors the schedule and model-output conversion of diffusers' ``scheduling_dpmsolver_multistep.py``,
``scheduling_dpmsolver_singlestep.py``, ``scheduling_deis_multistep.py`` and
``scheduling_unipc_multistep.py``.

Scalars are NumPy float32, as diffusers computes them on its float32 ``sigmas``: the float32
cancellations in e.g. (e^{-h} - 1) / h + 1 then agree with diffusers'. Each float32 ``exp``/``log``
is rounded once from float64, which agrees with torch's float32 kernels far more often than NumPy's
float32 SIMD functions do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..math.arrays import per_sample
from ..math.sigmas import beta_sigmas, exponential_sigmas, karras_sigmas, sigma_to_t
from ..scheduler import step_indices

TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")


def exp32(x: Any) -> np.float32:
    with np.errstate(over="ignore"):
        return np.float32(math.exp(x) if x < 709 else math.inf)


def expm1_32(x: Any) -> np.float32:
    with np.errstate(over="ignore"):
        return np.float32(math.expm1(x) if x < 709 else math.inf)


def log32(x: Any) -> np.float32:
    return np.float32(math.log(x) if x > 0 else -math.inf)


def alpha_sigma(sigma: Any, flow: bool = False) -> tuple[np.float32, np.float32]:
    """(alpha_t, sigma_t) of noise level ``sigma``; rectified flow has x_t = (1 - sigma) x_0 + sigma eps."""
    sigma = np.float32(sigma)
    if flow:
        return np.float32(1) - sigma, sigma
    alpha = np.float32(1) / np.sqrt(sigma * sigma + np.float32(1))
    return alpha, sigma * alpha


def log_snr(alpha: np.float32, sigma: np.float32) -> np.float32:
    """lambda_t = log alpha_t - log sigma_t."""
    return log32(alpha) - log32(sigma)


def lambda_at(sigma: Any, flow: bool = False) -> np.float32:
    return log_snr(*alpha_sigma(sigma, flow))


def train_log_snr(alphas_cumprod: np.ndarray) -> np.ndarray:
    """lambda_t of every training timestep (float32, increasing noise means decreasing lambda)."""
    return np.log(np.sqrt(alphas_cumprod)) - np.log(np.sqrt(1 - alphas_cumprod))


def clipped_timestep_count(alphas_cumprod: np.ndarray, lambda_min_clipped: float) -> int:
    """How many training timesteps have lambda_t >= ``lambda_min_clipped`` (the noisiest are cut off)."""
    clipped = int(np.searchsorted(train_log_snr(alphas_cumprod)[::-1], lambda_min_clipped))
    return len(alphas_cumprod) - clipped


def multistep_timesteps(
    spacing: str,
    num_inference_steps: int,
    num_train_timesteps: int,
    *,
    steps_offset: int = 0,
    last_timestep: int | None = None,
) -> np.ndarray:
    """Descending int64 timesteps; ``last_timestep`` (exclusive) drops the noisiest training steps."""
    n = num_inference_steps
    last = num_train_timesteps if last_timestep is None else last_timestep
    if spacing == "linspace":
        timesteps = np.linspace(0, last - 1, n + 1).round()[::-1][:-1]
    elif spacing == "leading":
        step_ratio = last // (n + 1)
        timesteps = (np.arange(0, n + 1) * step_ratio).round()[::-1][:-1].astype(np.int64) + steps_offset
    elif spacing == "trailing":
        timesteps = np.arange(last, 0, -num_train_timesteps / n).round() - 1
    else:
        raise NotImplementedError(
            f"timestep_spacing={spacing!r} is not supported; choose one of {', '.join(map(repr, TIMESTEP_SPACINGS))}"
        )
    return timesteps.astype(np.int64)


def spaced_sigmas(
    spacing: str,
    train_sigmas: np.ndarray,
    timesteps: np.ndarray,
    num_inference_steps: int,
    *,
    round_timesteps: bool = True,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(sigmas, timesteps) of the inference schedule, without the final sigma.

    ``spacing`` is "interp" (the sigmas at ``timesteps``), or "karras", "exponential", "beta" or "lu"
    (evenly spaced in lambda), whose timesteps are recomputed from the sigmas; those of "karras" and
    "lu" are rounded when ``round_timesteps``.
    """
    if spacing == "interp":
        return np.interp(timesteps, np.arange(len(train_sigmas)), train_sigmas), timesteps
    log_sigmas = np.log(train_sigmas)
    sigma_min = float(train_sigmas[0]) if sigma_min is None else sigma_min
    sigma_max = float(train_sigmas[-1]) if sigma_max is None else sigma_max
    n = num_inference_steps
    if spacing == "karras":
        sigmas = karras_sigmas(sigma_min, sigma_max, n)
    elif spacing == "exponential":
        sigmas = exponential_sigmas(sigma_min, sigma_max, n)
    elif spacing == "beta":
        sigmas = beta_sigmas(sigma_min, sigma_max, n)
    elif spacing == "lu":
        lambda_min, lambda_max = float(log_sigmas[0]), float(log_sigmas[-1])
        sigmas = np.exp(lambda_max + np.linspace(0, 1, n) * (lambda_min - lambda_max))
    else:
        raise ValueError(f"unknown sigma spacing {spacing!r}")
    timesteps = sigma_to_t(sigmas, log_sigmas)
    if round_timesteps and spacing in ("karras", "lu"):
        timesteps = timesteps.round()
    return sigmas, timesteps


def sigma_spacing(config: Any) -> str:
    """Which spacing a config's use_*_sigmas flags choose ("interp" when none)."""
    for flag, spacing in (
        ("use_karras_sigmas", "karras"),
        ("use_lu_lambdas", "lu"),
        ("use_exponential_sigmas", "exponential"),
        ("use_beta_sigmas", "beta"),
        ("use_flow_sigmas", "flow"),
    ):
        if config.get(flag):
            return spacing
    return "interp"


def flow_sigmas(num_inference_steps: int, num_train_timesteps: int, shift: float) -> np.ndarray:
    """Rectified-flow noise levels from 1 down, shifted towards the noisy end by ``shift``."""
    sigmas = 1.0 - np.linspace(1, 1 / num_train_timesteps, num_inference_steps + 1)
    return np.flip(shift * sigmas / (1 + (shift - 1) * sigmas))[:-1].copy()


def final_sigma(final_sigmas_type: str, alphas_cumprod: np.ndarray) -> float:
    """The noise level after the last step: 0, or that of the first training timestep."""
    if final_sigmas_type == "zero":
        return 0.0
    if final_sigmas_type == "sigma_min":
        return float(np.sqrt((1 - alphas_cumprod[0]) / alphas_cumprod[0]))
    raise NotImplementedError(
        f"final_sigmas_type={final_sigmas_type!r} is not supported; choose 'zero' or 'sigma_min'"
    )


def to_x0(model_output: Any, sample: Any, prediction_type: str, alpha: Any, sigma: Any) -> Any:
    """The model's estimate of x_0 (data prediction), from its output of kind ``prediction_type``.

    For flow_prediction, ``alpha`` and ``sigma`` are (1 - s, s) and the output is the velocity eps - x_0.
    """
    if prediction_type == "epsilon":
        return (sample - float(sigma) * model_output) / float(alpha)
    if prediction_type == "sample":
        return model_output
    if prediction_type == "v_prediction":
        return float(alpha) * sample - float(sigma) * model_output
    if prediction_type == "flow_prediction":
        return sample - float(sigma) * model_output
    raise NotImplementedError(
        f"prediction_type={prediction_type!r} is not supported; choose one of 'epsilon', 'sample', "
        "'v_prediction', 'flow_prediction'"
    )


def to_epsilon(model_output: Any, sample: Any, prediction_type: str, alpha: Any, sigma: Any) -> Any:
    """The model's estimate of the noise eps (noise prediction)."""
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return (sample - float(alpha) * model_output) / float(sigma)
    if prediction_type == "v_prediction":
        return float(alpha) * model_output + float(sigma) * sample
    raise NotImplementedError(
        f"prediction_type={prediction_type!r} is not supported with noise prediction; choose one of "
        "'epsilon', 'sample', 'v_prediction'"
    )


def epsilon_from_x0(x0: Any, sample: Any, alpha: Any, sigma: Any) -> Any:
    return (sample - float(alpha) * x0) / float(sigma)


def x0_from_epsilon(epsilon: Any, sample: Any, alpha: Any, sigma: Any) -> Any:
    return (sample - float(sigma) * epsilon) / float(alpha)


def add_noise(scheduler: Any, original_samples: Any, noise: Any, timesteps: Any) -> Any:
    """x_t = alpha_t x_0 + sigma_t eps at each sample's timestep (alpha_t = 1 - sigma for flow sigmas)."""
    sigma = per_sample(scheduler.sigmas[step_indices(scheduler, timesteps)], original_samples)
    if getattr(scheduler.config, "use_flow_sigmas", False):
        alpha_t, sigma_t = 1 - sigma, sigma
    else:
        alpha_t = 1 / (sigma**2 + 1) ** 0.5
        sigma_t = sigma * alpha_t
    return alpha_t * original_samples + sigma_t * noise
