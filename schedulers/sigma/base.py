"""The base of the schedulers that step in sigma as k-diffusion does: Euler, Euler ancestral, Heun, LMS,
KDPM2 and KDPM2 ancestral.

They keep the training schedule's sigmas to place timesteps, feed the model x / sqrt(sigma^2 + 1),
start from noise of std ``init_noise_sigma`` and noise a clean sample as x_0 + sigma * eps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..math.betas import make_betas
from ..math.sigmas import training_alphas_cumprod
from ..scheduler import SchedulerMixin
from . import schedule as ss


class SigmaScheduler(SchedulerMixin):
    is_scale_input_called = False
    sigmas: np.ndarray

    def _init_training_sigmas(self, prediction_types: tuple[str, ...]) -> None:
        """betas, alpha-bar and sigmas of the training schedule, from the config."""
        config, name = self.config, type(self).__name__
        ss.check_sigma_config(name, config, prediction_types)
        zero_snr = config.get("rescale_betas_zero_snr", False)
        self.betas = make_betas(name, config, zero_snr=zero_snr)
        self.alphas_cumprod = training_alphas_cumprod(self.betas, zero_snr)
        self.train_sigmas = ss.training_sigmas(self.alphas_cumprod)

    @property
    def init_noise_sigma(self) -> float:
        return ss.init_noise_sigma(self.sigmas, self.config.timestep_spacing)

    def _input_sigma(self) -> Any:
        """The sigma the model sees at this step."""
        return self.sigmas[self._index]

    def scale_model_input(self, sample: Any, timestep: Any) -> Any:
        if self.step_index is None:
            self._init_step_index(timestep)
        self.is_scale_input_called = True
        return ss.scale_model_input(sample, self._input_sigma())

    def _start_step(self, timestep: Any, *, refuse_index: bool = False) -> None:
        if refuse_index and isinstance(timestep, (int, np.integer)) and not isinstance(timestep, bool):
            raise ValueError(
                f"{type(self).__name__}.step: pass one of scheduler.timesteps as `timestep`, "
                f"not an integer index ({timestep})"
            )
        super()._start_step(timestep)

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        return ss.add_noise(self, original_samples, noise, timesteps)
