"""DDPM: ancestral sampling of the learned reverse process (Ho et al., https://arxiv.org/abs/2006.11239)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import array_module, draw_noise
from ..math.betas import linspace_f32, rescale_zero_terminal_snr
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as sched
from .base import AlphaScheduler

VARIANCE_TYPES = (
    "fixed_small",
    "fixed_small_log",
    "fixed_large",
    "fixed_large_log",
    "learned",
    "learned_range",
)
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", "laplace")


def sigmoid_betas(beta_start: float, beta_end: float, num_train_timesteps: int) -> np.ndarray:
    x = linspace_f32(-6, 6, num_train_timesteps)
    return (1 / (1 + np.exp(-x))) * np.float32(beta_end - beta_start) + np.float32(beta_start)


class DDPMScheduler(AlphaScheduler):
    beta_schedules = BETA_SCHEDULES
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | list[float] | None = None,
        variance_type: str = "fixed_small",
        clip_sample: bool = True,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        clip_sample_range: float = 1.0,
        sample_max_value: float = 1.0,
        timestep_spacing: str = "leading",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
    ):
        name = type(self).__name__
        check_choice(name, "variance_type", variance_type, VARIANCE_TYPES)
        check_choice(name, "prediction_type", prediction_type, sched.PREDICTION_TYPES)
        check_choice(name, "timestep_spacing", timestep_spacing, sched.TIMESTEP_SPACINGS)
        betas = None
        if trained_betas is None and beta_schedule == "sigmoid":  # DDPM's own schedule
            betas = sigmoid_betas(beta_start, beta_end, num_train_timesteps)
            betas = rescale_zero_terminal_snr(betas) if rescale_betas_zero_snr else betas
        self._init_training_alphas(betas)
        self.one = np.float32(1.0)
        self.custom_timesteps = False
        self.variance_type = variance_type

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        timesteps: list[int] | None = None,
    ) -> None:
        """The schedule for ``num_inference_steps`` steps, or the given descending ``timesteps``."""
        T = self.config.num_train_timesteps
        if num_inference_steps is not None and timesteps is not None:
            raise ValueError("pass either num_inference_steps or timesteps to set_timesteps, not both")
        if timesteps is not None:
            self.timesteps = sched.check_descending(timesteps, T)
            self.custom_timesteps = True
            return
        if num_inference_steps is None:
            raise ValueError("set_timesteps needs num_inference_steps or timesteps")
        sched.check_timestep_count(num_inference_steps, T)
        self.num_inference_steps = num_inference_steps
        self.custom_timesteps = False
        self.timesteps = sched.spaced_timesteps(
            T, num_inference_steps, self.config.timestep_spacing, self.config.steps_offset
        )

    def previous_timestep(self, timestep: Any) -> int:
        return sched.previous_timestep(self, timestep)

    def _alpha_bars(self, t: int) -> tuple[np.float32, np.float32]:
        prev_t = self.previous_timestep(t)
        return self.alphas_cumprod[t], sched.alpha_bar_at(self.alphas_cumprod, prev_t, self.one)

    def _get_variance(self, t: int, predicted_variance: Any = None, variance_type: str | None = None) -> Any:
        """Variance of the step from t (float32 scalar), or its log/std/array as ``variance_type`` says."""
        alpha_bar, alpha_bar_prev = self._alpha_bars(t)
        beta = 1 - alpha_bar / alpha_bar_prev
        # Posterior variance beta~_t (Ho et al. eq. 7), kept off zero so its log is finite.
        variance = np.maximum((1 - alpha_bar_prev) / (1 - alpha_bar) * beta, np.float32(1e-20))
        variance_type = variance_type or self.config.variance_type
        if variance_type == "fixed_small":
            return variance
        if variance_type == "fixed_small_log":
            return np.exp(0.5 * np.log(variance))
        if variance_type == "fixed_large":
            return beta
        if variance_type == "fixed_large_log":
            return np.log(beta)
        if variance_type == "learned":
            return predicted_variance
        # learned_range: the model interpolates log-variance between beta~_t and beta_t.
        frac = (predicted_variance + 1) / 2
        return frac * float(np.log(beta)) + (1 - frac) * float(np.log(variance))

    def _noise_scale(self, t: int, predicted_variance: Any) -> Any:
        """What the unit noise is multiplied by, exactly as diffusers derives it from ``_get_variance``."""
        variance = self._get_variance(t, predicted_variance=predicted_variance)
        if self.variance_type == "fixed_small_log":
            return variance
        if self.variance_type == "learned_range":
            return array_module(variance).exp(0.5 * variance)
        # For fixed_large_log this is sqrt(log beta) = NaN, as in diffusers.
        return array_module(variance).sqrt(variance)

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        generator: Any = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        """x_{t-1} ~ p(x_{t-1} | x_t): the posterior mean given the predicted x_0, plus noise if t > 0."""
        t = sched.train_timestep("DDPMScheduler", timestep, self.config.num_train_timesteps)
        predicted_variance = None
        if self.variance_type in ("learned", "learned_range"):
            if model_output.shape[1] != 2 * sample.shape[1]:
                raise ValueError(
                    f"DDPMScheduler: variance_type={self.variance_type!r} needs a model output with twice the "
                    f"sample's channels (prediction and variance), got {model_output.shape[1]} channels for "
                    f"{sample.shape[1]}"
                )
            channels = sample.shape[1]
            model_output, predicted_variance = model_output[:, :channels], model_output[:, channels:]

        alpha_bar, alpha_bar_prev = self._alpha_bars(t)
        beta_bar, beta_bar_prev = 1 - alpha_bar, 1 - alpha_bar_prev
        alpha = alpha_bar / alpha_bar_prev
        x0 = sched.predict_x0(self.config.prediction_type, model_output, sample, alpha_bar)
        x0 = sched.clip_x0(x0, self.config)

        # Mean of q(x_{t-1} | x_t, x_0), Ho et al. eq. 7.
        x0_coeff = np.sqrt(alpha_bar_prev) * (1 - alpha) / beta_bar
        sample_coeff = np.sqrt(alpha) * beta_bar_prev / beta_bar
        prev_sample = float(x0_coeff) * x0 + float(sample_coeff) * sample

        if t > 0:
            noise = draw_noise(generator, model_output.shape, like=model_output)
            scale = self._noise_scale(t, predicted_variance)
            prev_sample = prev_sample + (float(scale) if np.ndim(scale) == 0 else scale) * noise

        if not return_dict:
            return (prev_sample, x0)
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        return sched.get_velocity(self.alphas_cumprod, sample, noise, timesteps)
