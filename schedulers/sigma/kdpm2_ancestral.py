"""Ancestral DPM-Solver-2 (k-diffusion's ``sample_dpm_2_ancestral``; Lu et al., https://arxiv.org/abs/2206.00927),
diffusers' KDPM2AncestralDiscreteScheduler.

Like KDPM2, but each step ends at sigma_down (midpoint taken between sigma and sigma_down) and then adds
fresh noise of std sigma_up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise
from ..output import SchedulerOutput
from . import schedule as ss
from .base import SigmaScheduler


class KDPM2AncestralDiscreteScheduler(SigmaScheduler):
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
        return self.sigmas[i] if self.state_in_first_order else self.sigmas_interpol[i - 1]

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
        sigmas_next = np.concatenate([sigmas[1:], np.zeros(1, np.float32)])
        with np.errstate(divide="ignore", invalid="ignore"):
            sigmas_down, sigmas_up = ss.ancestral_sigmas(sigmas, sigmas_next)
        sigmas_down[-1] = 0.0
        sigmas_interpol = ss.log_midpoints(sigmas, sigmas_down)
        sigmas_interpol[-2:] = 0.0
        self.sigmas = ss.interleave(sigmas)
        self.sigmas_interpol = ss.interleave(sigmas_interpol)
        self.sigmas_up = ss.interleave(sigmas_up)
        self.sigmas_down = ss.interleave(sigmas_down)
        timesteps_interpol = ss.timesteps_for_sigmas(sigmas_interpol, self.train_sigmas).astype(
            timesteps.dtype
        )
        pairs = np.stack([timesteps_interpol[:-2], timesteps[1:]], axis=-1).reshape(-1)
        self.timesteps = np.concatenate([timesteps[:1], pairs])
        self.sample = None
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
        self._start_step(timestep)
        i = self._index
        prediction_type = self.config.prediction_type
        if self.state_in_first_order:
            sigma, sigma_interpol = self.sigmas[i], self.sigmas_interpol[i]
            pred_original_sample = ss.denoised(model_output, sample, sigma, prediction_type)
            derivative = ss.to_d(sample, sigma, pred_original_sample)
            self.sample = sample
            prev_sample = sample + derivative * float(sigma_interpol - sigma)
        else:
            sigma, sigma_interpol = self.sigmas[i - 1], self.sigmas_interpol[i - 1]
            sigma_up, sigma_down = self.sigmas_up[i - 1], self.sigmas_down[i - 1]
            pred_original_sample = ss.denoised(model_output, sample, sigma_interpol, prediction_type)
            derivative = ss.to_d(sample, sigma_interpol, pred_original_sample)
            prev_sample = self.sample + derivative * float(sigma_down - sigma)
            self.sample = None
            noise = draw_noise(generator, model_output.shape, like=model_output)
            prev_sample = prev_sample + noise * float(sigma_up)
        self._step_index = self._index + 1
        if not return_dict:
            return prev_sample, pred_original_sample
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
