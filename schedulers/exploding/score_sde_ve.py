"""Score SDE VE: predictor-corrector sampling of the variance-exploding SDE (Song et al., Score-Based Generative
Modeling through Stochastic Differential Equations, https://arxiv.org/abs/2011.13456), diffusers'
ScoreSdeVeScheduler.

The model predicts the score grad_x log p_t(x). ``step_pred`` is the reverse-diffusion predictor (the paper's
eq. 47, the ancestral step of the discretised SDE); ``step_correct`` one step of Langevin dynamics, its size set
by the signal-to-noise ratio ``snr`` (Algorithm 5). Timesteps run from 1 down to ``sampling_eps``; the sigmas
are geometric between sigma_min and sigma_max.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import array_module, draw_noise
from ..math.betas import linspace_f32
from ..output import SchedulerOutput, SdeVeOutput
from . import schedule as xs
from .base import ExplodingScheduler


class ScoreSdeVeScheduler(ExplodingScheduler):
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 2000,
        snr: float = 0.15,
        sigma_min: float = 0.01,
        sigma_max: float = 1348.0,
        sampling_eps: float = 1e-5,
        correct_steps: int = 1,
    ) -> None:
        self.timesteps = None
        self.set_sigmas(num_train_timesteps, sigma_min, sigma_max, sampling_eps)

    def set_timesteps(
        self, num_inference_steps: int, sampling_eps: float | None = None, device: Any = None
    ) -> None:
        """Continuous timesteps from 1 down to ``sampling_eps`` (float32, as diffusers)."""
        eps = sampling_eps if sampling_eps is not None else self.config.sampling_eps
        self.num_inference_steps = num_inference_steps
        self.timesteps = linspace_f32(1, eps, num_inference_steps)

    def set_sigmas(
        self,
        num_inference_steps: int,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        sampling_eps: float | None = None,
    ) -> None:
        """``sigmas``: sigma(t) = sigma_min (sigma_max / sigma_min)^t at each timestep (set_timesteps first: this
        makes a schedule of ``num_inference_steps`` only if there is none); ``discrete_sigmas``: the geometric
        ladder of ``num_inference_steps`` sigmas that ``step_pred`` walks down."""
        config = self.config
        sigma_min = sigma_min if sigma_min is not None else config.sigma_min
        sigma_max = sigma_max if sigma_max is not None else config.sigma_max
        if self.timesteps is None:
            self.set_timesteps(num_inference_steps, sampling_eps)
        assert self.timesteps is not None
        self.discrete_sigmas = xs.geometric_sigmas(sigma_min, sigma_max, num_inference_steps)
        ratio, low = np.float32(sigma_max / sigma_min), np.float32(sigma_min)
        self.sigmas = np.array([low * ratio**t for t in self.timesteps], dtype=np.float32)

    def get_adjacent_sigma(self, timesteps: Any, t: Any) -> Any:
        """The next smaller discrete sigma below each index of ``timesteps`` (0 below the first)."""
        timesteps = np.asarray(timesteps, dtype=np.int64)
        return np.where(timesteps == 0, np.float32(0), self.discrete_sigmas[timesteps - 1])

    def _sigma_index(self, timestep: Any) -> int:
        """The discrete-sigma index of continuous ``timestep``: t (N - 1), truncated, in float32 as diffusers."""
        if self.timesteps is None:
            raise RuntimeError(
                "ScoreSdeVeScheduler: call set_timesteps(num_inference_steps) before step_pred()"
            )
        t = np.float32(timestep.item() if hasattr(timestep, "item") else timestep)
        return int(t * np.float32(len(self.timesteps) - 1))

    def step_pred(
        self, model_output: Any, timestep: Any, sample: Any, generator: Any = None, return_dict: bool = True
    ) -> SdeVeOutput | tuple:
        """Predictor: x <- x + g^2 score + g z, g^2 the drop in sigma^2 to the next discrete sigma."""
        index = self._sigma_index(timestep)
        sigma = self.discrete_sigmas[index]
        adjacent = self.get_adjacent_sigma(index, sigma)
        diffusion = np.sqrt(sigma**2 - adjacent**2)
        # The drift g^2 score is subtracted in diffusers (dt < 0): the same numbers as adding it.
        prev_sample_mean = sample + float(diffusion**2) * model_output
        noise = draw_noise(generator, sample.shape, like=sample)
        prev_sample = prev_sample_mean + float(diffusion) * noise
        if not return_dict:
            return (prev_sample, prev_sample_mean)
        return SdeVeOutput(prev_sample=prev_sample, prev_sample_mean=prev_sample_mean)

    def step_correct(
        self, model_output: Any, sample: Any, generator: Any = None, return_dict: bool = True
    ) -> SchedulerOutput | tuple:
        """Corrector: one Langevin step x <- x + e score + sqrt(2 e) z, e = 2 (snr |z| / |score|)^2."""
        if self.timesteps is None:
            raise RuntimeError(
                "ScoreSdeVeScheduler: call set_timesteps(num_inference_steps) before step_correct()"
            )
        xp = array_module(sample)
        noise = xs.float32_noise(generator, sample.shape, like=sample)
        batch = sample.shape[0]
        grad_norm = xp.linalg.norm(model_output.reshape(batch, -1), axis=-1).mean()
        noise_norm = xp.linalg.norm(noise.reshape(batch, -1), axis=-1).mean()
        # diffusers multiplies by a float32 ones vector, which rounds the step size to float32.
        step_size = np.float32(float((self.config.snr * noise_norm / grad_norm) ** 2 * 2))
        prev_sample_mean = sample + float(step_size) * model_output
        prev_sample = prev_sample_mean + float(np.sqrt(step_size * 2)) * noise
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        """x_0 + sigma noise, sigma the discrete sigma at each (integer) index of ``timesteps``."""
        indices = np.asarray(timesteps.get() if hasattr(timesteps, "get") else timesteps, dtype=np.int64)
        return xs.add_sigma_noise(original_samples, noise, self.discrete_sigmas[indices])
