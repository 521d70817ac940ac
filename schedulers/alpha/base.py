"""The base of the schedulers that step on alpha-bar at integer timesteps: DDPM, DDIM, PNDM and LCM.

They start from unit-variance noise, feed the model the sample as it is, and noise a clean sample as
sqrt(alpha-bar) x_0 + sqrt(1 - alpha-bar) eps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..math.betas import alphas_cumprod_from_betas, make_betas
from ..scheduler import SchedulerMixin, check_choice
from . import schedule as sched


class AlphaScheduler(SchedulerMixin):
    init_noise_sigma = 1.0
    beta_schedules: tuple[str, ...] = ("linear", "scaled_linear", "squaredcos_cap_v2")

    def _init_training_alphas(self, betas: np.ndarray | None = None) -> None:
        """betas (the config's unless given), alphas and alpha-bar; the training timesteps until set_timesteps."""
        config, name = self.config, type(self).__name__
        if config.trained_betas is None:
            check_choice(name, "beta_schedule", config.beta_schedule, self.beta_schedules)
        if betas is None:
            betas = make_betas(name, config, zero_snr=config.get("rescale_betas_zero_snr", False))
        self.betas = betas
        self.alphas = 1 - betas
        self.alphas_cumprod = alphas_cumprod_from_betas(betas)
        self.num_inference_steps = None
        self.timesteps = np.arange(config.num_train_timesteps, dtype=np.int64)[::-1].copy()

    def scale_model_input(self, sample: Any, *args: Any, **kwargs: Any) -> Any:
        return sample

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        return sched.add_noise(self.alphas_cumprod, original_samples, noise, timesteps)
