"""Linear multistep sampler (k-diffusion's ``sample_lms``), diffusers' LMSDiscreteScheduler.

The next sample is x + sum_j c_j d_j over the last ``order`` slopes d_j = dx/dsigma, where c_j integrates
the Lagrange polynomial through the past noise levels over [sigma_t, sigma_{t+1}]. diffusers integrates
numerically with SciPy; the integrand is a polynomial, so ``schedule.lms_coefficient`` integrates
it exactly with Gauss-Legendre and SciPy is not needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import register_to_config
from ..output import SchedulerOutput
from . import schedule as ss
from .base import SigmaScheduler


class LMSDiscreteScheduler(SigmaScheduler):
    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | Sequence[float] | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
    ):
        self._init_training_sigmas(("epsilon", "v_prediction", "sample"))
        self.use_karras_sigmas = use_karras_sigmas
        self.set_timesteps(num_train_timesteps)
        self.num_inference_steps = None  # the training schedule until the caller sets one
        self.is_scale_input_called = False

    def get_lms_coefficient(self, order: int, t: int, current_order: int) -> float:
        """Weight of the slope from ``current_order`` steps back in the step from index ``t``."""
        return ss.lms_coefficient(self.sigmas, order, t, current_order)

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        config = self.config
        self.num_inference_steps = num_inference_steps
        timesteps = ss.spaced_timesteps(
            config.timestep_spacing, config.num_train_timesteps, num_inference_steps, config.steps_offset
        )
        sigmas = ss.sigmas_at(timesteps, self.train_sigmas)
        # diffusers' LMS spaces Karras sigmas over the schedule's own range, ignoring sigma_min/sigma_max.
        respaced = ss.respace_sigmas(
            config, sigmas, num_inference_steps, use_config_range=not config.use_karras_sigmas
        )
        if respaced is not None:
            sigmas = respaced
            timesteps = ss.timesteps_for_sigmas(sigmas, self.train_sigmas)
        self.sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        self.timesteps = np.asarray(timesteps, dtype=np.float32)
        self.derivatives: list[Any] = []
        self._step_index = None
        self._begin_index = None

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        order: int = 4,
        return_dict: bool = True,
        generator: Any = None,
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep)
        i = self._index
        sigma = self.sigmas[i]
        pred_original_sample = ss.denoised(model_output, sample, sigma, self.config.prediction_type)
        self.derivatives.append(ss.to_d(sample, sigma, pred_original_sample))
        if len(self.derivatives) > order:
            self.derivatives.pop(0)
        order = min(i + 1, order)
        coefficients = [self.get_lms_coefficient(order, i, k) for k in range(order)]
        prev_sample = sample + sum(c * d for c, d in zip(coefficients, reversed(self.derivatives)))
        self._step_index = self._index + 1
        if not return_dict:
            return prev_sample, pred_original_sample
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
