"""DDIM: the non-Markovian sampler, deterministic at eta = 0 (Song et al., https://arxiv.org/abs/2010.02502)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as sched
from .base import AlphaScheduler


class DDIMScheduler(AlphaScheduler):
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | list[float] | None = None,
        clip_sample: bool = True,
        set_alpha_to_one: bool = True,
        steps_offset: int = 0,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        clip_sample_range: float = 1.0,
        sample_max_value: float = 1.0,
        timestep_spacing: str = "leading",
        rescale_betas_zero_snr: bool = False,
    ):
        name = type(self).__name__
        check_choice(name, "prediction_type", prediction_type, sched.PREDICTION_TYPES)
        check_choice(name, "timestep_spacing", timestep_spacing, sched.TIMESTEP_SPACINGS)
        self._init_training_alphas()
        # alpha-bar "before" the first training step, used by the last sampling step.
        self.final_alpha_cumprod = np.float32(1.0) if set_alpha_to_one else self.alphas_cumprod[0]

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        T = self.config.num_train_timesteps
        sched.check_timestep_count(num_inference_steps, T)
        self.num_inference_steps = num_inference_steps
        self.timesteps = sched.spaced_timesteps(
            T, num_inference_steps, self.config.timestep_spacing, self.config.steps_offset
        )

    def _get_variance(self, timestep: int, prev_timestep: int) -> np.float32:
        """sigma_t^2 / eta^2 of Song et al. eq. 16."""
        alpha_bar = self.alphas_cumprod[timestep]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, prev_timestep, self.final_alpha_cumprod)
        return (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        eta: float = 0.0,
        use_clipped_model_output: bool = False,
        generator: Any = None,
        variance_noise: Any = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        """x_{t-1} from Song et al. eq. 12: predicted x_0, the direction to x_t, and eta-scaled noise."""
        self._require_timesteps()
        t = sched.train_timestep("DDIMScheduler", timestep, self.config.num_train_timesteps)
        prev_t = t - self.config.num_train_timesteps // self.num_inference_steps
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, prev_t, self.final_alpha_cumprod)

        prediction_type = self.config.prediction_type
        x0 = sched.predict_x0(prediction_type, model_output, sample, alpha_bar)
        epsilon = sched.predict_epsilon(prediction_type, model_output, sample, alpha_bar)
        x0 = sched.clip_x0(x0, self.config)
        if use_clipped_model_output:
            epsilon = sched.epsilon_from_x0(sample, x0, alpha_bar)

        std = eta * np.sqrt(self._get_variance(t, prev_t))
        direction = float(np.sqrt(1 - alpha_bar_prev - std**2)) * epsilon
        prev_sample = float(np.sqrt(alpha_bar_prev)) * x0 + direction

        if eta > 0:
            if variance_noise is not None and generator is not None:
                raise ValueError("DDIMScheduler.step: pass either generator or variance_noise, not both")
            if variance_noise is None:
                variance_noise = draw_noise(generator, model_output.shape, like=model_output)
            prev_sample = prev_sample + float(std) * variance_noise

        if not return_dict:
            return (prev_sample, x0)
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        return sched.get_velocity(self.alphas_cumprod, sample, noise, timesteps)
