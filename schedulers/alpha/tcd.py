"""TCD: Trajectory Consistency Distillation (Zheng et al., https://arxiv.org/abs/2402.19159), diffusers' TCDScheduler.

LCM's schedule, with strategic stochastic sampling (the paper's Algorithm 4): from x_t the model's x_0 and
epsilon estimates give x_s, the sample at s = floor((1 - gamma) t') on the trajectory, t' being the next
timestep of the schedule; then x_s is re-noised forward to t'. gamma (``eta``) sets the stochasticity: 0 is
deterministic (s = t', x_{t'} = x_s), 1 goes back to s = 0, nearly the clean estimate, and re-noises from there,
close to LCM. The last step adds no noise.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise
from ..output import TCDSchedulerOutput
from ..scheduler import check_choice
from . import schedule as sched
from .base import AlphaScheduler

logger = logging.getLogger(__name__)


class TCDScheduler(AlphaScheduler):
    _compatibles = ()
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        trained_betas: np.ndarray | list[float] | None = None,
        original_inference_steps: int = 50,
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        set_alpha_to_one: bool = True,
        steps_offset: int = 0,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        sample_max_value: float = 1.0,
        timestep_spacing: str = "leading",
        timestep_scaling: float = 10.0,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        # clip_sample, thresholding, steps_offset, timestep_spacing and timestep_scaling are kept in the config
        # for diffusers' sake; its TCD step does not read them, and neither does this one.
        check_choice(type(self).__name__, "prediction_type", prediction_type, sched.PREDICTION_TYPES)
        self._init_training_alphas()
        self.final_alpha_cumprod = np.float32(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.custom_timesteps = False
        self._step_index = None
        self._begin_index = None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        original_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        strength: float = 1.0,
    ) -> None:
        """Pick ``num_inference_steps`` evenly from the distillation schedule, or take custom ``timesteps``.

        The distillation schedule is every (T // ``original_inference_steps``)-th training timestep from the
        config; an ``original_inference_steps`` passed here makes it every training timestep instead, as in
        diffusers. ``strength`` < 1 (img2img) keeps only its low-noise part.
        """
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(
                "TCDScheduler.set_timesteps: pass exactly one of num_inference_steps or timesteps"
            )
        origin, original_steps = self._distillation_timesteps(original_inference_steps, strength)
        if timesteps is not None:
            chosen = self._custom_timesteps(timesteps, origin, original_steps, strength)
        else:
            assert num_inference_steps is not None
            chosen = self._spaced_timesteps(num_inference_steps, origin, original_steps, strength)
        self.timesteps = np.asarray(chosen, dtype=np.int64)
        self._step_index = None
        self._begin_index = None

    def _distillation_timesteps(
        self, original_inference_steps: int | None, strength: float
    ) -> tuple[np.ndarray, int]:
        """The ascending training/distillation timesteps the inference schedule is drawn from."""
        T = self.config.num_train_timesteps
        if original_inference_steps is not None:
            return np.arange(0, int(T * strength)), original_inference_steps
        original_steps = self.config.original_inference_steps
        if original_steps > T:
            raise ValueError(
                f"TCDScheduler: original_inference_steps={original_steps} cannot exceed num_train_timesteps={T}"
            )
        stride = T // original_steps  # the paper's skipping step k
        return np.arange(1, int(original_steps * strength) + 1) * stride - 1, original_steps

    def _spaced_timesteps(
        self, num_inference_steps: int, origin: np.ndarray, original_steps: int, strength: float
    ) -> np.ndarray:
        sched.check_timestep_count(num_inference_steps, self.config.num_train_timesteps)
        if len(origin) < num_inference_steps:
            raise ValueError(
                f"TCDScheduler: original_inference_steps x strength = {original_steps} x {strength} gives "
                f"{len(origin)} timesteps, fewer than num_inference_steps={num_inference_steps}; "
                "lower num_inference_steps or raise strength"
            )
        self.num_inference_steps = num_inference_steps
        if num_inference_steps > original_steps:
            raise ValueError(
                f"TCDScheduler: num_inference_steps={num_inference_steps} cannot exceed "
                f"original_inference_steps={original_steps}"
            )
        origin = origin[::-1]
        picks = np.floor(np.linspace(0, len(origin), num=num_inference_steps, endpoint=False))
        return origin[picks.astype(np.int64)]

    def _custom_timesteps(
        self, timesteps: list[int], origin: np.ndarray, original_steps: int, strength: float
    ) -> np.ndarray:
        T = self.config.num_train_timesteps
        chosen = sched.check_descending(timesteps, T)
        if strength == 1.0 and chosen[0] != T - 1:
            logger.warning(
                "TCDScheduler: custom timesteps start at %d, not %d; results may be unexpected",
                chosen[0],
                T - 1,
            )
        off_schedule = [int(t) for t in chosen[1:] if t not in set(origin.tolist())]
        if off_schedule:
            logger.warning(
                "TCDScheduler: custom timesteps %s are not on the distillation schedule; results may be unexpected",
                off_schedule,
            )
        if len(chosen) > original_steps:
            logger.warning(
                "TCDScheduler: %d custom timesteps exceed original_inference_steps=%d",
                len(chosen),
                original_steps,
            )
        self.num_inference_steps = len(chosen)
        self.custom_timesteps = True
        kept = min(int(self.num_inference_steps * strength), self.num_inference_steps)
        return chosen[max(self.num_inference_steps - kept, 0) * self.order :]

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        eta: float = 0.3,
        generator: Any = None,
        return_dict: bool = True,
    ) -> TCDSchedulerOutput | tuple:
        """One step t -> t'. ``eta`` is the paper's gamma, in [0, 1]: how far back along the trajectory the
        deterministic part goes (s = floor((1 - eta) t')) before fresh noise brings the sample to t'."""
        check_gamma(eta)
        self._start_step(timestep)
        t = sched.train_timestep("TCDScheduler", timestep, self.config.num_train_timesteps)
        index, prev_t = self._next_timestep()
        s = intermediate_timestep(prev_t, eta)
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, prev_t, self.final_alpha_cumprod)
        alpha_bar_s = self.alphas_cumprod[s]

        prediction_type = self.config.prediction_type
        x0 = sched.predict_x0(prediction_type, model_output, sample, alpha_bar)
        epsilon = sched.predict_epsilon(prediction_type, model_output, sample, alpha_bar)
        x_s = float(np.sqrt(alpha_bar_s)) * x0 + float(np.sqrt(1 - alpha_bar_s)) * epsilon

        # No noise at the last step, so that one-step sampling is deterministic too.
        if eta > 0 and index + 1 != self.num_inference_steps:
            noise = draw_noise(generator, model_output.shape, like=x_s)
            ratio = alpha_bar_prev / alpha_bar_s
            prev_sample = float(np.sqrt(ratio)) * x_s + float(np.sqrt(1 - ratio)) * noise
        else:
            prev_sample = x_s
        self._step_index = index + 1

        if not return_dict:
            return (prev_sample, x_s)
        return TCDSchedulerOutput(prev_sample=prev_sample, pred_noised_sample=x_s)

    def _next_timestep(self) -> tuple[int, int]:
        """The step index and t', the next timestep of the schedule (0 after the last, as in diffusers)."""
        timesteps, index = self.timesteps, self._step_index
        assert timesteps is not None and index is not None
        return index, int(timesteps[index + 1]) if index + 1 < len(timesteps) else 0

    def previous_timestep(self, timestep: Any) -> int:
        return sched.previous_timestep(self, timestep)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        return sched.get_velocity(self.alphas_cumprod, sample, noise, timesteps)


def check_gamma(eta: float) -> None:
    if not 0 <= eta <= 1:
        raise ValueError(
            f"TCDScheduler.step: eta={eta!r} (the paper's gamma) must be in [0, 1]: 0 samples "
            "deterministically, 1 fully stochastically (the default is 0.3); pass eta between 0 and 1"
        )


def intermediate_timestep(prev_t: int, eta: float) -> int:
    """s = floor((1 - gamma) t'), in float32 as diffusers computes it (float64 floors differently at some t')."""
    return int(np.floor(np.float32(1 - eta) * np.float32(prev_t)))
