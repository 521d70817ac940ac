"""Heun's second-order sampler (Karras et al. 2022, https://arxiv.org/abs/2206.00364, Algorithm 1 with
S_churn = 0), diffusers' HeunDiscreteScheduler.

Each step takes two model evaluations: an Euler step to sigma_next, then the average of the slopes at
both ends. The schedule lists every timestep after the first twice, one entry per model evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import register_to_config
from ..output import SchedulerOutput
from . import schedule as ss
from .base import SigmaScheduler


class HeunDiscreteScheduler(SigmaScheduler):
    order = 2
    # between the two stages of a step: the first stage's derivative, step size and sample
    prev_derivative: Any
    dt: float | None
    sample: Any

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | Sequence[float] | None = None,
        prediction_type: str = "epsilon",
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
    ) -> None:
        self._init_training_sigmas(("epsilon", "v_prediction", "sample"))
        self.set_timesteps(num_train_timesteps, None, num_train_timesteps)
        self.num_inference_steps = None  # the training schedule until the caller sets one
        self.use_karras_sigmas = use_karras_sigmas

    @property
    def state_in_first_order(self) -> bool:
        return self.dt is None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        num_train_timesteps: int | None = None,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        config, name = self.config, type(self).__name__
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(
                f"{name}.set_timesteps: pass exactly one of `num_inference_steps` or `timesteps`"
            )
        if timesteps is not None:
            for option in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"):
                if config[option]:
                    raise ValueError(
                        f"{name}.set_timesteps: custom `timesteps` cannot be used with {option}=True"
                    )
        if timesteps is not None:
            steps = np.array(timesteps, dtype=np.float32)
            self.num_inference_steps = len(steps)
            sigmas = ss.sigmas_at(steps, self.train_sigmas)
        else:
            assert num_inference_steps is not None  # the check above lets exactly one of the two through
            self.num_inference_steps = num_inference_steps
            steps, sigmas = ss.inference_schedule(
                config, self.train_sigmas, num_inference_steps, num_train_timesteps
            )
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        self.sigmas = np.concatenate([sigmas[:1], np.repeat(sigmas[1:-1], 2), sigmas[-1:]])
        self.timesteps = np.concatenate([steps[:1], np.repeat(steps[1:], 2)]).astype(np.float32)
        self.prev_derivative = None
        self.dt = None
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
        first = self.state_in_first_order
        i = self._index if first else self._index - 1
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        # The model was evaluated at sigma in the first stage and at sigma_next in the second.
        sigma_input = sigma if first else sigma_next
        pred_original_sample = ss.denoised(model_output, sample, sigma_input, self.config.prediction_type)
        if self.config.clip_sample:
            limit = self.config.clip_sample_range
            pred_original_sample = pred_original_sample.clip(-limit, limit)
        derivative = ss.to_d(sample, sigma_input, pred_original_sample)
        if first:
            self.prev_derivative, self.dt, self.sample = derivative, float(sigma_next - sigma), sample
            prev_sample = sample + derivative * self.dt
        else:
            derivative = (self.prev_derivative + derivative) / 2
            prev_sample = self.sample + derivative * self.dt
            self.prev_derivative = self.dt = self.sample = None
        self._step_index = self._index + 1
        if not return_dict:
            return prev_sample, pred_original_sample
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
