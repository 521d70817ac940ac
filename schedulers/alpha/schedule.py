"""Shared math of the integer-timestep schedulers that step on alpha-bar (the cumulative product of 1 - beta).

- DDPM: Ho et al., Denoising Diffusion Probabilistic Models, https://arxiv.org/abs/2006.11239
- DDIM: Song et al., Denoising Diffusion Implicit Models, https://arxiv.org/abs/2010.02502
- PNDM: Liu et al., Pseudo Numerical Methods for Diffusion Models on Manifolds, https://arxiv.org/abs/2202.09778
- LCM: Luo et al., Latent Consistency Models, https://arxiv.org/abs/2310.04378
Mirrors the shared parts of diffusers' ``scheduling_ddpm.py``, ``scheduling_ddim.py``,
``scheduling_pndm.py`` and ``scheduling_lcm.py``.

Alpha-bar values are float32 NumPy scalars and the per-step coefficients are computed from them in
float32, as diffusers does with its 0-d float32 tensors; they meet the sample only as Python floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..math.arrays import array_module, per_sample
from ..math.thresholding import threshold_sample

TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def spaced_timesteps(
    num_train_timesteps: int, num_inference_steps: int, spacing: str, steps_offset: int = 0
) -> np.ndarray:
    """Descending int64 training timesteps for ``num_inference_steps`` steps (Lin et al., https://arxiv.org/abs/2305.08891, Table 2).

    ``steps_offset`` shifts only the "leading" spacing, as in diffusers.
    """
    n, T = num_inference_steps, num_train_timesteps
    if spacing == "linspace":
        ts = np.linspace(0, T - 1, n).round()[::-1]
    elif spacing == "leading":
        ts = (np.arange(n) * (T // n))[::-1] + steps_offset
    elif spacing == "trailing":
        # A float step, as in diffusers: np.arange decides the count, so it is kept as is.
        ts = np.round(np.arange(T, 0, -T / n)) - 1
    else:
        raise NotImplementedError(
            f"timestep_spacing={spacing!r} is not supported; choose one of "
            f"{', '.join(map(repr, TIMESTEP_SPACINGS))}"
        )
    return ts.astype(np.int64)


def check_timestep_count(num_inference_steps: int, num_train_timesteps: int) -> None:
    if num_inference_steps > num_train_timesteps:
        raise ValueError(
            f"num_inference_steps={num_inference_steps} cannot exceed num_train_timesteps="
            f"{num_train_timesteps}: the model was trained on that many timesteps"
        )


def check_descending(timesteps: Any, num_train_timesteps: int) -> np.ndarray:
    """Custom timesteps as int64, refused unless strictly descending and below ``num_train_timesteps``."""
    timesteps = np.asarray([int(t) for t in timesteps], dtype=np.int64)
    if np.any(np.diff(timesteps) >= 0):
        raise ValueError(f"custom timesteps must be strictly descending, got {timesteps.tolist()}")
    if timesteps[0] >= num_train_timesteps:
        raise ValueError(
            f"custom timesteps must start below num_train_timesteps={num_train_timesteps}, got {timesteps[0]}"
        )
    return timesteps


def train_timestep(scheduler: str, timestep: Any, num_train_timesteps: int) -> int:
    """``timestep`` as an int, refused unless it is a training timestep 0 .. num_train_timesteps - 1."""
    t = int(timestep.item() if hasattr(timestep, "item") else timestep)
    if not 0 <= t < num_train_timesteps:
        raise ValueError(
            f"{scheduler}: timestep {t} is outside the training timesteps 0..{num_train_timesteps - 1}; "
            "pass one of scheduler.timesteps"
        )
    return t


def previous_timestep(scheduler: Any, timestep: Any) -> int:
    """The timestep after ``timestep`` in the scheduler's schedule (-1 after the last).

    Before set_timesteps the schedule is every training timestep, so that is t - 1.
    """
    t = int(timestep.item() if hasattr(timestep, "item") else timestep)
    if not (scheduler.custom_timesteps or scheduler.num_inference_steps):
        return t - 1
    matches = np.flatnonzero(scheduler.timesteps == t)
    if len(matches) == 0:
        scheduler.index_for_timestep(t)  # raises, naming the schedule
    index = int(matches[0])
    return int(scheduler.timesteps[index + 1]) if index + 1 < len(scheduler.timesteps) else -1


def alpha_bar_at(alphas_cumprod: np.ndarray, t: Any, final_alpha_cumprod: np.float32) -> np.float32:
    """alpha-bar at integer timestep ``t``; ``final_alpha_cumprod`` stands for any t < 0 (past the end)."""
    t = int(t)
    return alphas_cumprod[t] if t >= 0 else final_alpha_cumprod


def predict_x0(prediction_type: str, model_output: Any, sample: Any, alpha_bar: np.float32) -> Any:
    """The model's estimate of the clean sample x_0, from whichever quantity it predicts."""
    beta_bar = 1 - alpha_bar
    if prediction_type == "epsilon":
        return (sample - float(np.sqrt(beta_bar)) * model_output) / float(np.sqrt(alpha_bar))
    if prediction_type == "sample":
        return model_output
    if prediction_type == "v_prediction":
        return float(np.sqrt(alpha_bar)) * sample - float(np.sqrt(beta_bar)) * model_output
    raise _unknown_prediction_type(prediction_type)


def predict_epsilon(prediction_type: str, model_output: Any, sample: Any, alpha_bar: np.float32) -> Any:
    """The model's estimate of the noise epsilon in ``sample``."""
    beta_bar = 1 - alpha_bar
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return epsilon_from_x0(sample, model_output, alpha_bar)
    if prediction_type == "v_prediction":
        return float(np.sqrt(alpha_bar)) * model_output + float(np.sqrt(beta_bar)) * sample
    raise _unknown_prediction_type(prediction_type)


def _unknown_prediction_type(prediction_type: str) -> NotImplementedError:
    return NotImplementedError(
        f"prediction_type={prediction_type!r} is not supported; choose one of "
        f"{', '.join(map(repr, PREDICTION_TYPES))}"
    )


def epsilon_from_x0(sample: Any, x0: Any, alpha_bar: np.float32) -> Any:
    return (sample - float(np.sqrt(alpha_bar)) * x0) / float(np.sqrt(1 - alpha_bar))


def clip_x0(x0: Any, config: Any) -> Any:
    """Dynamic thresholding if configured, else clipping to ``clip_sample_range`` if configured."""
    if config.thresholding:
        return threshold_sample(
            x0,
            dynamic_thresholding_ratio=config.dynamic_thresholding_ratio,
            sample_max_value=config.sample_max_value,
        )
    if config.clip_sample:
        return array_module(x0).clip(x0, -config.clip_sample_range, config.clip_sample_range)
    return x0


def _alpha_bar_for(alphas_cumprod: np.ndarray, timesteps: Any, like: Any) -> Any:
    # diffusers casts alpha-bar to the sample dtype before taking square roots.
    if array_module(timesteps) is not np:
        timesteps = timesteps.get()
    return alphas_cumprod.astype(like.dtype)[np.asarray(timesteps, dtype=np.int64)]


def add_noise(alphas_cumprod: np.ndarray, original_samples: Any, noise: Any, timesteps: Any) -> Any:
    """Forward diffusion q(x_t | x_0): sqrt(alpha-bar) x_0 + sqrt(1 - alpha-bar) noise."""
    alpha_bar = _alpha_bar_for(alphas_cumprod, timesteps, original_samples)
    return (
        per_sample(np.sqrt(alpha_bar), original_samples) * original_samples
        + per_sample(np.sqrt(1 - alpha_bar), original_samples) * noise
    )


def get_velocity(alphas_cumprod: np.ndarray, sample: Any, noise: Any, timesteps: Any) -> Any:
    """The v-prediction target sqrt(alpha-bar) noise - sqrt(1 - alpha-bar) x_0 (Salimans & Ho 2022)."""
    alpha_bar = _alpha_bar_for(alphas_cumprod, timesteps, sample)
    return (
        per_sample(np.sqrt(alpha_bar), sample) * noise - per_sample(np.sqrt(1 - alpha_bar), sample) * sample
    )
