"""Ancestral Euler sampler (k-diffusion's ``sample_euler_ancestral``), diffusers' EulerAncestralDiscreteScheduler.

Each step goes deterministically down to sigma_down, then adds fresh noise of std sigma_up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise, upcast
from ..output import SchedulerOutput
from . import schedule as ss
from .base import SigmaScheduler


class EulerAncestralDiscreteScheduler(SigmaScheduler):
    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | Sequence[float] | None = None,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        self._init_training_sigmas(("epsilon", "v_prediction"))
        self.sigmas = np.concatenate([self.train_sigmas[::-1], np.zeros(1, np.float32)])
        self.timesteps = np.linspace(0, num_train_timesteps - 1, num_train_timesteps)[::-1].copy()
        self.num_inference_steps = None
        self.is_scale_input_called = False
        self._step_index = None
        self._begin_index = None

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        config = self.config
        self.num_inference_steps = num_inference_steps
        timesteps = ss.spaced_timesteps(
            config.timestep_spacing, config.num_train_timesteps, num_inference_steps, config.steps_offset
        )
        sigmas = ss.sigmas_at(timesteps, self.train_sigmas)
        self.sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        self.timesteps = timesteps
        self._step_index = None
        self._begin_index = None

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        generator: Any = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep, refuse_index=True)
        sigma, sigma_to = self.sigmas[self._index], self.sigmas[self._index + 1]
        sample = upcast(sample)
        pred_original_sample = ss.denoised(model_output, sample, sigma, self.config.prediction_type)
        sigma_down, sigma_up = ss.ancestral_sigmas(sigma, sigma_to)
        derivative = ss.to_d(sample, sigma, pred_original_sample)
        prev_sample = sample + derivative * float(sigma_down - sigma)
        noise = draw_noise(generator, model_output.shape, like=model_output)
        prev_sample = (prev_sample + noise * float(sigma_up)).astype(model_output.dtype, copy=False)
        self._step_index = self._index + 1
        if not return_dict:
            return prev_sample, pred_original_sample
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
