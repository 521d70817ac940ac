"""Noise schedules over training timesteps: betas and alphas_cumprod.

Betas and their cumulative products are float32, as in diffusers (``scheduling_ddpm.py`` and its
copies), so that 1000-step schedules agree to the last digits.
- cosine ("squaredcos_cap_v2"): Nichol & Dhariwal, Improved DDPM, https://arxiv.org/abs/2102.09672
- zero terminal SNR: Lin et al., Common Diffusion Noise Schedules and Sample Steps are Flawed,
  https://arxiv.org/abs/2305.08891 (Algorithm 1)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "exp", "laplace")


def linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)``, value for value.

    torch fills the first half forwards from ``start`` and the second half backwards from ``end``,
    with the step computed in float32.
    """
    if steps == 1:
        return np.array([start], dtype=np.float32)
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float64((end32 - start32) / np.float32(steps - 1))
    # torch evaluates start + step * i with a fused multiply-add: one rounding to float32.
    idx = np.arange(steps, dtype=np.float64)
    half = steps // 2
    out = np.where(idx < half, np.float64(start32) + step * idx, np.float64(end32) - step * (steps - 1 - idx))
    return out.astype(np.float32)


def betas_for_alpha_bar(
    num_diffusion_timesteps: int, max_beta: float = 0.999, alpha_transform_type: str = "cosine"
) -> np.ndarray:
    """Discretise a continuous alpha-bar(t), t in [0, 1], into betas (capped at ``max_beta``)."""
    if alpha_transform_type == "cosine":

        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    elif alpha_transform_type == "laplace":

        def alpha_bar(t: float) -> float:
            lmb = -0.5 * math.copysign(1, 0.5 - t) * math.log(1 - 2 * math.fabs(0.5 - t) + 1e-6)
            snr = math.exp(lmb)
            return math.sqrt(snr / (1 + snr))

    elif alpha_transform_type == "exp":

        def alpha_bar(t: float) -> float:
            return math.exp(t * -12.0)

    else:
        raise ValueError(f"alpha_transform_type={alpha_transform_type!r}: choose cosine, laplace or exp")
    n = num_diffusion_timesteps
    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return np.array(betas, dtype=np.float32)


def make_betas(scheduler: str, config: Any, *, zero_snr: bool = False) -> np.ndarray:
    """Betas for a scheduler's config (float32), naming the option in the error when it is unknown;
    with ``zero_snr``, rescaled to zero terminal SNR."""
    betas = _schedule_betas(scheduler, config)
    return rescale_zero_terminal_snr(betas) if zero_snr else betas


def _schedule_betas(scheduler: str, config: Any) -> np.ndarray:
    if config.trained_betas is not None:
        return np.asarray(config.trained_betas, dtype=np.float32)
    n, start, end, schedule = (
        config.num_train_timesteps,
        config.beta_start,
        config.beta_end,
        config.beta_schedule,
    )
    if schedule == "linear":
        return linspace_f32(start, end, n)
    if schedule == "scaled_linear":
        # The schedule Stable Diffusion was trained with.
        return linspace_f32(start**0.5, end**0.5, n) ** 2
    if schedule == "squaredcos_cap_v2":
        return betas_for_alpha_bar(n)
    if schedule in ("exp", "laplace"):
        return betas_for_alpha_bar(n, alpha_transform_type=schedule)
    raise NotImplementedError(
        f"{scheduler}: beta_schedule={schedule!r} is not supported; choose one of "
        f"{', '.join(map(repr, BETA_SCHEDULES))} or pass trained_betas"
    )


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Shift and scale sqrt(alpha-bar) so that the last timestep has zero SNR (Lin et al., Alg. 1)."""
    alphas_bar_sqrt = np.sqrt(alphas_cumprod_from_betas(betas))
    first, last = alphas_bar_sqrt[0].copy(), alphas_bar_sqrt[-1].copy()
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * (first / (first - last))
    alphas_bar = alphas_bar_sqrt**2
    alphas = np.concatenate([alphas_bar[:1], alphas_bar[1:] / alphas_bar[:-1]])
    return (1 - alphas).astype(betas.dtype)


def alphas_cumprod_from_betas(betas: np.ndarray) -> np.ndarray:
    """Cumulative product of (1 - beta), accumulated in float64 as torch's CPU cumprod does."""
    return np.cumprod((1.0 - betas).astype(np.float64)).astype(betas.dtype)
