"""LCM: multistep consistency sampling (Luo et al., Latent Consistency Models, https://arxiv.org/abs/2310.04378).

Each step maps x_t to the consistency function's x_0 estimate ("denoised"), then re-noises it to
the next timestep of the schedule, which is a subset of the distillation schedule of
``original_inference_steps`` timesteps.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise
from ..output import LCMSchedulerOutput
from ..scheduler import check_choice
from . import schedule as sched
from .base import AlphaScheduler

logger = logging.getLogger(__name__)

SIGMA_DATA = 0.5


class LCMScheduler(AlphaScheduler):
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
    ):
        name = type(self).__name__
        check_choice(name, "prediction_type", prediction_type, sched.PREDICTION_TYPES)
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

        ``strength`` < 1 (img2img) keeps only the low-noise part of the schedule.
        """
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(
                "LCMScheduler.set_timesteps: pass exactly one of num_inference_steps or timesteps"
            )
        T = self.config.num_train_timesteps
        original_steps = (
            original_inference_steps
            if original_inference_steps is not None
            else self.config.original_inference_steps
        )
        if original_steps > T:
            raise ValueError(
                f"LCMScheduler: original_inference_steps={original_steps} cannot exceed num_train_timesteps={T}"
            )
        # The distillation schedule: every (T // original_steps)-th timestep, ascending.
        stride = T // original_steps
        origin = np.arange(1, int(original_steps * strength) + 1) * stride - 1

        if timesteps is not None:
            custom = sched.check_descending(timesteps, T)
            self._warn_about_custom(custom, origin, original_steps, strength)
            self.num_inference_steps = len(custom)
            self.custom_timesteps = True
            kept = min(int(self.num_inference_steps * strength), self.num_inference_steps)
            chosen = custom[max(self.num_inference_steps - kept, 0) * self.order :]
        else:
            assert num_inference_steps is not None  # the check above lets exactly one of the two through
            sched.check_timestep_count(num_inference_steps, T)
            if len(origin) < num_inference_steps:
                raise ValueError(
                    f"LCMScheduler: original_inference_steps x strength = {original_steps} x {strength} gives "
                    f"{len(origin)} timesteps, fewer than num_inference_steps={num_inference_steps}; "
                    f"lower num_inference_steps or raise strength"
                )
            if num_inference_steps > original_steps:
                raise ValueError(
                    f"LCMScheduler: num_inference_steps={num_inference_steps} cannot exceed "
                    f"original_inference_steps={original_steps}"
                )
            self.num_inference_steps = num_inference_steps
            origin = origin[::-1]
            picks = np.floor(np.linspace(0, len(origin), num=num_inference_steps, endpoint=False))
            chosen = origin[picks.astype(np.int64)]
        self.timesteps = np.asarray(chosen, dtype=np.int64)
        self._step_index = None
        self._begin_index = None

    def _warn_about_custom(
        self, timesteps: np.ndarray, origin: np.ndarray, original_steps: int, strength: float
    ) -> None:
        T = self.config.num_train_timesteps
        if strength == 1.0 and timesteps[0] != T - 1:
            logger.warning(
                "LCMScheduler: custom timesteps start at %d, not %d; results may be unexpected",
                timesteps[0],
                T - 1,
            )
        off_schedule = sorted(set(timesteps[1:].tolist()) - set(origin.tolist()), reverse=True)
        if off_schedule:
            logger.warning(
                "LCMScheduler: custom timesteps %s are not on the distillation schedule; "
                "results may be unexpected",
                off_schedule,
            )
        if len(timesteps) > original_steps:
            logger.warning(
                "LCMScheduler: %d custom timesteps exceed original_inference_steps=%d",
                len(timesteps),
                original_steps,
            )

    def get_scalings_for_boundary_condition_discrete(self, timestep: Any) -> tuple[np.float32, np.float32]:
        """c_skip and c_out of the consistency parametrisation (Luo et al. eq. 9), in float32."""
        self.sigma_data = SIGMA_DATA
        scaled = np.float32(int(timestep)) * np.float32(self.config.timestep_scaling)
        c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
        c_out = scaled / np.sqrt(scaled**2 + SIGMA_DATA**2)
        return c_skip, c_out

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        generator: Any = None,
        return_dict: bool = True,
    ) -> LCMSchedulerOutput | tuple:
        self._start_step(timestep)
        t = sched.train_timestep("LCMScheduler", timestep, self.config.num_train_timesteps)
        next_index, timesteps = self._index + 1, self._chosen_timesteps
        prev_t = int(timesteps[next_index]) if next_index < len(timesteps) else t
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, prev_t, self.final_alpha_cumprod)

        c_skip, c_out = self.get_scalings_for_boundary_condition_discrete(t)
        x0 = sched.predict_x0(self.config.prediction_type, model_output, sample, alpha_bar)
        x0 = sched.clip_x0(x0, self.config)
        denoised = float(c_out) * x0 + float(c_skip) * sample

        if self._index != self._require_timesteps() - 1:
            noise = draw_noise(generator, model_output.shape, like=denoised)
            prev_sample = (
                float(np.sqrt(alpha_bar_prev)) * denoised + float(np.sqrt(1 - alpha_bar_prev)) * noise
            )
        else:
            prev_sample = denoised
        self._step_index = self._index + 1

        if not return_dict:
            return (prev_sample, denoised)
        return LCMSchedulerOutput(prev_sample=prev_sample, denoised=denoised)

    def previous_timestep(self, timestep: Any) -> int:
        return sched.previous_timestep(self, timestep)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        return sched.get_velocity(self.alphas_cumprod, sample, noise, timesteps)
