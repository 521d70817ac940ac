"""DDIM inversion: DDIM's deterministic step run backwards, from a clean latent towards noise, on ascending
timesteps (Mokady et al., https://arxiv.org/abs/2211.09794; diffusers' ``DDIMInverseScheduler``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import array_module
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as sched
from .base import AlphaScheduler

SPACINGS = ("leading", "trailing")


class DDIMInverseScheduler(AlphaScheduler):
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
        clip_sample_range: float = 1.0,
        timestep_spacing: str = "leading",
        rescale_betas_zero_snr: bool = False,
    ):
        name = type(self).__name__
        check_choice(name, "prediction_type", prediction_type, sched.PREDICTION_TYPES)
        check_choice(name, "timestep_spacing", timestep_spacing, SPACINGS)
        self._init_training_alphas()
        # ascending: inversion walks towards noise
        self.timesteps = np.arange(self.config.num_train_timesteps, dtype=np.int64)
        # alpha-bar "before" the first training step, where the first inversion step starts from
        self.initial_alpha_cumprod = np.float32(1.0) if set_alpha_to_one else self.alphas_cumprod[0]

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        """Ascending training timesteps: DDIM's for the same settings, in reverse order."""
        T = self.config.num_train_timesteps
        sched.check_timestep_count(num_inference_steps, T)
        self.num_inference_steps = num_inference_steps
        spacing, offset = self.config.timestep_spacing, self.config.steps_offset
        self.timesteps = sched.spaced_timesteps(T, num_inference_steps, spacing, offset)[::-1].copy()

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> SchedulerOutput | tuple:
        """x_t from x_{t - T/n}: DDIM's eq. 12 with the two alpha-bars swapped (``kwargs`` such as a
        generator are ignored: the step is deterministic)."""
        self._require_timesteps()
        T = self.config.num_train_timesteps
        target = sched.train_timestep("DDIMInverseScheduler", timestep, T)
        source = min(target - T // self.num_inference_steps, T - 1)
        alpha_bar = sched.alpha_bar_at(self.alphas_cumprod, source, self.initial_alpha_cumprod)
        alpha_bar_next = self.alphas_cumprod[target]

        prediction_type = self.config.prediction_type
        x0 = sched.predict_x0(prediction_type, model_output, sample, alpha_bar)
        epsilon = sched.predict_epsilon(prediction_type, model_output, sample, alpha_bar)
        if self.config.clip_sample:
            limit = self.config.clip_sample_range
            x0 = array_module(x0).clip(x0, -limit, limit)
        direction = float(np.sqrt(1 - alpha_bar_next)) * epsilon
        next_sample = float(np.sqrt(alpha_bar_next)) * x0 + direction
        if not return_dict:
            return (next_sample, x0)
        return SchedulerOutput(prev_sample=next_sample, pred_original_sample=x0)
