"""DPM-Solver-2 in k-diffusion's form (``sample_dpm_2``; Lu et al., https://arxiv.org/abs/2206.00927),
diffusers' KDPM2DiscreteScheduler.

Each step evaluates the model twice: at sigma, then at the log-midpoint between sigma and sigma_next,
whose slope carries the whole step. The schedule interleaves the midpoint timesteps with the regular ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import register_to_config
from ..output import SchedulerOutput
from . import schedule as ss
from .base import SigmaScheduler


class KDPM2DiscreteScheduler(SigmaScheduler):
    order = 2

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | Sequence[float] | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
    ) -> None:
        self._init_training_sigmas(("epsilon", "v_prediction"))
        self.set_timesteps(num_train_timesteps, None, num_train_timesteps)
        self.num_inference_steps = None  # the training schedule until the caller sets one

    @property
    def state_in_first_order(self) -> bool:
        return self.sample is None

    def _input_sigma(self) -> Any:
        """sigma in the first stage, the midpoint sigma in the second."""
        i = self._index
        return self.sigmas[i] if self.state_in_first_order else self.sigmas_interpol[i]

    def set_timesteps(
        self, num_inference_steps: int, device: Any = None, num_train_timesteps: int | None = None
    ) -> None:
        config = self.config
        self.num_inference_steps = num_inference_steps
        timesteps, sigmas = ss.inference_schedule(
            config, self.train_sigmas, num_inference_steps, num_train_timesteps
        )
        if config.use_karras_sigmas:
            timesteps = timesteps.round()
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        sigmas_interpol = ss.log_midpoints(sigmas, np.roll(sigmas, 1))
        self.sigmas = ss.interleave(sigmas)
        self.sigmas_interpol = ss.interleave(sigmas_interpol)
        timesteps_interpol = ss.timesteps_for_sigmas(sigmas_interpol, self.train_sigmas).astype(
            timesteps.dtype
        )
        pairs = np.stack([timesteps_interpol[1:-1], timesteps[1:]], axis=-1).reshape(-1)
        self.timesteps = np.concatenate([timesteps[:1], pairs])
        self.sample = None
        self._step_index = None
        self._begin_index = None

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        return_dict: bool = True,
        generator: Any = None,
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep)
        i = self._index
        if self.state_in_first_order:
            sigma, sigma_interpol, sigma_next = (
                self.sigmas[i],
                self.sigmas_interpol[i + 1],
                self.sigmas[i + 1],
            )
            pred_original_sample = ss.denoised(model_output, sample, sigma, self.config.prediction_type)
            derivative = ss.to_d(sample, sigma, pred_original_sample)
            # Half step (in log sigma) to the midpoint, where the model is evaluated next.
            self.sample = sample
            prev_sample = sample + derivative * float(sigma_interpol - sigma)
        else:
            sigma, sigma_interpol, sigma_next = self.sigmas[i - 1], self.sigmas_interpol[i], self.sigmas[i]
            pred_original_sample = ss.denoised(
                model_output, sample, sigma_interpol, self.config.prediction_type
            )
            derivative = ss.to_d(sample, sigma_interpol, pred_original_sample)
            # Full step from the stage's starting sample with the midpoint slope.
            prev_sample = self.sample + derivative * float(sigma_next - sigma)
            self.sample = None
        self._step_index = self._index + 1
        if not return_dict:
            return prev_sample, pred_original_sample
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
