"""Karras VE: the stochastic sampler of Karras et al., Elucidating the Design Space of Diffusion-Based Generative
Models (https://arxiv.org/abs/2206.00364, Algorithm 2), for variance-exploding models; diffusers'
KarrasVeScheduler (deprecated there, still shipped).

Each step first "churns": ``add_noise_to_input`` raises sigma to sigma_hat = (1 + gamma) sigma with fresh noise
(gamma > 0 only for sigma in [s_min, s_max]); ``step`` takes an Euler step from sigma_hat to the next sigma, and
``step_correct`` Heun's second-order correction of it. The caller evaluates the model in between, as diffusers'
KarrasVePipeline does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..output import KarrasVeOutput
from . import schedule as xs
from .base import ExplodingScheduler


class KarrasVeScheduler(ExplodingScheduler):
    order = 2

    @register_to_config
    def __init__(
        self,
        sigma_min: float = 0.02,
        sigma_max: float = 100,
        s_noise: float = 1.007,
        s_churn: float = 80,
        s_min: float = 0.05,
        s_max: float = 50,
    ) -> None:
        self.num_inference_steps = None
        self.timesteps = None
        self.schedule: np.ndarray | None = None  # indexed by timestep (step counts down from n - 1 to 0)

    def __len__(self) -> int:
        raise TypeError("KarrasVeScheduler has no training timesteps (its config has no num_train_timesteps)")

    def __bool__(self) -> bool:
        return True

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        """Timesteps n - 1 .. 0 and ``schedule[t]`` = sigma_max^2 (sigma_min^2 / sigma_max^2)^(t / (n - 1)), as
        diffusers defines it (float32)."""
        config = self.config
        self.num_inference_steps = num_inference_steps
        self.timesteps = np.arange(num_inference_steps, dtype=np.int64)[::-1].copy()
        ratio = np.float32(config.sigma_min**2 / config.sigma_max**2)
        top = np.float32(config.sigma_max**2)
        last = np.float32(num_inference_steps - 1)
        self.schedule = np.array(
            [top * ratio ** (np.float32(i) / last) for i in self.timesteps], dtype=np.float32
        )

    def add_noise_to_input(self, sample: Any, sigma: Any, generator: Any = None) -> tuple[Any, Any]:
        """Churn: sigma_hat = (1 + gamma) sigma and x_hat = x + sqrt(sigma_hat^2 - sigma^2) eps, eps ~ N(0, s_noise^2)."""
        config = self.config
        if self.num_inference_steps is None:
            raise RuntimeError(
                "KarrasVeScheduler: call set_timesteps(num_inference_steps) before add_noise_to_input()"
            )
        if config.s_min <= sigma <= config.s_max:
            gamma = min(config.s_churn / self.num_inference_steps, 2**0.5 - 1)
        else:
            gamma = 0
        eps = xs.float32_noise(generator, sample.shape, like=sample) * np.float32(config.s_noise)
        sigma_hat = sigma + gamma * sigma
        sample_hat = sample + float(np.sqrt(sigma_hat**2 - sigma**2)) * eps
        return sample_hat, sigma_hat

    def step(
        self, model_output: Any, sigma_hat: Any, sigma_prev: Any, sample_hat: Any, return_dict: bool = True
    ) -> KarrasVeOutput | tuple:
        """Euler from sigma_hat to sigma_prev; ``model_output`` is D(x_hat) - x_hat scaled by 1 / sigma_hat (diffusers'
        parametrisation: x_0 = x_hat + sigma_hat model_output)."""
        pred_original_sample = sample_hat + float(sigma_hat) * model_output
        derivative = (sample_hat - pred_original_sample) / float(sigma_hat)
        sample_prev = sample_hat + float(sigma_prev - sigma_hat) * derivative
        if not return_dict:
            return (sample_prev, derivative)
        return KarrasVeOutput(
            prev_sample=sample_prev, derivative=derivative, pred_original_sample=pred_original_sample
        )

    def step_correct(
        self,
        model_output: Any,
        sigma_hat: Any,
        sigma_prev: Any,
        sample_hat: Any,
        sample_prev: Any,
        derivative: Any,
        return_dict: bool = True,
    ) -> KarrasVeOutput | tuple:
        """Heun: redo the step with the mean of the slopes at sigma_hat and at sigma_prev."""
        pred_original_sample = sample_prev + float(sigma_prev) * model_output
        derivative_corr = (sample_prev - pred_original_sample) / float(sigma_prev)
        sample_prev = sample_hat + float(sigma_prev - sigma_hat) * (0.5 * derivative + 0.5 * derivative_corr)
        if not return_dict:
            return (sample_prev, derivative)
        return KarrasVeOutput(
            prev_sample=sample_prev, derivative=derivative, pred_original_sample=pred_original_sample
        )

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        raise NotImplementedError(
            "KarrasVeScheduler does not noise training samples (neither does diffusers')"
        )
