"""PNDM: pseudo linear multistep (PLMS) steps, after Runge-Kutta (PRK) warm-up steps unless skipped.

Liu et al., Pseudo Numerical Methods for Diffusion Models on Manifolds, https://arxiv.org/abs/2202.09778.
Stable Diffusion's configs skip the PRK steps and start PLMS with a second-order (Heun-like) step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as sched
from .base import AlphaScheduler

PREDICTION_TYPES = ("epsilon", "v_prediction")


def pndm_timesteps(ascending: np.ndarray, num_train_timesteps: int, skip_prk_steps: bool) -> tuple:
    """The (PRK, PLMS) timesteps, descending, from the ascending spaced timesteps.

    PRK visits each of the last four intervals at its start, twice at its midpoint and at its end; the
    skip-PRK schedule repeats the second timestep, where PLMS takes its two-evaluation first step.
    """
    if skip_prk_steps:
        plms = np.concatenate([ascending[:-1], ascending[-2:-1], ascending[-1:]])[::-1].copy()
        return np.array([], dtype=np.int64), plms
    half_step = num_train_timesteps // len(ascending) // 2
    starts_and_mids = np.repeat(ascending[-4:], 2) + np.tile([0, half_step], 4)
    prk = np.repeat(starts_and_mids[:-1], 2)[1:-1][::-1].copy()
    return prk, ascending[:-3][::-1].copy()


class PNDMScheduler(AlphaScheduler):
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | list[float] | None = None,
        skip_prk_steps: bool = False,
        set_alpha_to_one: bool = False,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "leading",
        steps_offset: int = 0,
    ):
        name = type(self).__name__
        check_choice(name, "prediction_type", prediction_type, PREDICTION_TYPES)
        check_choice(name, "timestep_spacing", timestep_spacing, sched.TIMESTEP_SPACINGS)
        self._init_training_alphas()
        self.final_alpha_cumprod = np.float32(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.pndm_order = 4
        self.prk_timesteps: np.ndarray | None = None
        self.plms_timesteps: np.ndarray | None = None
        self.timesteps = None
        self._reset_history()

    def _reset_history(self) -> None:
        self.counter = 0  # steps taken since set_timesteps
        self.ets: list[Any] = []  # past model outputs (epsilon), newest last
        self.cur_model_output: Any = 0  # running Runge-Kutta sum
        self.cur_sample: Any = None  # sample at the start of the current multi-evaluation step

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        T = self.config.num_train_timesteps
        if not self.config.skip_prk_steps and num_inference_steps < self.pndm_order:
            raise ValueError(
                f"PNDMScheduler: skip_prk_steps=False needs num_inference_steps >= {self.pndm_order} "
                f"for its Runge-Kutta warm-up, got {num_inference_steps}; or set skip_prk_steps=True"
            )
        self.num_inference_steps = num_inference_steps
        ascending = sched.spaced_timesteps(
            T, num_inference_steps, self.config.timestep_spacing, self.config.steps_offset
        )[::-1]
        self.prk_timesteps, self.plms_timesteps = pndm_timesteps(ascending, T, self.config.skip_prk_steps)
        self.timesteps = np.concatenate([self.prk_timesteps, self.plms_timesteps]).astype(np.int64)
        self._reset_history()

    def step(
        self, model_output: Any, timestep: Any, sample: Any, return_dict: bool = True, generator: Any = None
    ) -> SchedulerOutput | tuple:
        """One PRK step while the warm-up lasts, then PLMS steps (``generator`` is unused)."""
        self._check_step(timestep)
        if self.counter < len(self._prk_timesteps) and not self.config.skip_prk_steps:
            return self.step_prk(model_output, timestep, sample, return_dict=return_dict)
        return self.step_plms(model_output, timestep, sample, return_dict=return_dict)

    @property
    def _prk_timesteps(self) -> np.ndarray:
        if self.prk_timesteps is None:
            raise RuntimeError("PNDMScheduler: call set_timesteps(num_inference_steps) before step()")
        return self.prk_timesteps

    def _check_step(self, timestep: Any) -> int:
        self._require_timesteps()
        return sched.train_timestep("PNDMScheduler", timestep, self.config.num_train_timesteps)

    def step_prk(self, model_output: Any, timestep: Any, sample: Any, return_dict: bool = True) -> Any:
        """One of the four evaluations of a fourth-order Runge-Kutta step (Liu et al. eq. 13)."""
        timestep = self._check_step(timestep)
        stage = self.counter % 4
        half_step = self.config.num_train_timesteps // self.num_inference_steps // 2
        prev_timestep = timestep - (half_step if stage in (0, 2) else 0)
        start_timestep = int(self._prk_timesteps[self.counter // 4 * 4])

        if stage == 0:
            self.cur_model_output += 1 / 6 * model_output
            self.ets.append(model_output)
            self.cur_sample = sample
        elif stage in (1, 2):
            self.cur_model_output += 1 / 3 * model_output
        else:
            model_output = self.cur_model_output + 1 / 6 * model_output
            self.cur_model_output = 0

        cur_sample = self.cur_sample if self.cur_sample is not None else sample
        prev_sample = self._get_prev_sample(cur_sample, start_timestep, prev_timestep, model_output)
        self.counter += 1
        return SchedulerOutput(prev_sample=prev_sample) if return_dict else (prev_sample,)

    def step_plms(self, model_output: Any, timestep: Any, sample: Any, return_dict: bool = True) -> Any:
        """A linear multistep step on the last four model outputs (Liu et al. eq. 12)."""
        timestep = self._check_step(timestep)
        if not self.config.skip_prk_steps and len(self.ets) < 3:
            raise ValueError(
                "PNDMScheduler: with skip_prk_steps=False the PLMS steps follow the 12 PRK steps; "
                "run the full schedule from the start"
            )
        stride = self.config.num_train_timesteps // self.num_inference_steps
        prev_timestep = timestep - stride
        if self.counter != 1:
            self.ets = self.ets[-3:]
            self.ets.append(model_output)
        else:
            # Second evaluation of the first step: redo the step from its start with the mean slope.
            prev_timestep, timestep = timestep, timestep + stride

        ets = self.ets
        if len(ets) == 1 and self.counter == 0:
            self.cur_sample = sample
        elif len(ets) == 1 and self.counter == 1:
            model_output = (model_output + ets[-1]) / 2
            sample, self.cur_sample = self.cur_sample, None
        elif len(ets) == 2:
            model_output = (3 * ets[-1] - ets[-2]) / 2
        elif len(ets) == 3:
            model_output = (23 * ets[-1] - 16 * ets[-2] + 5 * ets[-3]) / 12
        else:
            model_output = (1 / 24) * (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4])

        prev_sample = self._get_prev_sample(sample, timestep, prev_timestep, model_output)
        self.counter += 1
        return SchedulerOutput(prev_sample=prev_sample) if return_dict else (prev_sample,)

    def _get_prev_sample(self, sample: Any, timestep: int, prev_timestep: int, model_output: Any) -> Any:
        """x_{t-delta} from x_t and epsilon: the transfer part of PNDM (Liu et al. eq. 11)."""
        alpha_bar = self.alphas_cumprod[timestep]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, prev_timestep, self.final_alpha_cumprod)
        beta_bar, beta_bar_prev = 1 - alpha_bar, 1 - alpha_bar_prev
        if self.config.prediction_type == "v_prediction":
            model_output = sched.predict_epsilon("v_prediction", model_output, sample, alpha_bar)
        sample_coeff = np.sqrt(alpha_bar_prev / alpha_bar)
        denominator = alpha_bar * np.sqrt(beta_bar_prev) + np.sqrt(alpha_bar * beta_bar * alpha_bar_prev)
        return float(sample_coeff) * sample - float(alpha_bar_prev - alpha_bar) * model_output / float(
            denominator
        )
