"""Euler sampler (Karras et al. 2022, https://arxiv.org/abs/2206.00364, Algorithm 2), diffusers' EulerDiscreteScheduler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise, per_sample, upcast
from ..math.betas import linspace_f32
from ..output import SchedulerOutput
from ..scheduler import as_scalar, check_choice
from . import schedule as ss
from .base import SigmaScheduler


class EulerDiscreteScheduler(SigmaScheduler):
    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | Sequence[float] | None = None,
        prediction_type: str = "epsilon",
        interpolation_type: str = "linear",
        use_karras_sigmas: bool | None = False,
        use_exponential_sigmas: bool | None = False,
        use_beta_sigmas: bool | None = False,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        timestep_spacing: str = "linspace",
        timestep_type: str = "discrete",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
        final_sigmas_type: str = "zero",
    ):
        name = type(self).__name__
        check_choice(name, "interpolation_type", interpolation_type, ("linear", "log_linear"))
        check_choice(name, "timestep_type", timestep_type, ("discrete", "continuous"))
        check_choice(name, "final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        self._init_training_sigmas(("epsilon", "v_prediction", "sample", "original_sample"))
        sigmas = self.train_sigmas[::-1]
        if self._continuous_v:
            self.timesteps = 0.25 * np.log(sigmas)
        else:
            self.timesteps = np.linspace(0, num_train_timesteps - 1, num_train_timesteps)[::-1].astype(
                np.float32
            )
        self.sigmas = np.concatenate([sigmas, np.zeros(1, np.float32)])
        self.num_inference_steps = None
        self.is_scale_input_called = False
        self._step_index = None
        self._begin_index = None

    @property
    def _continuous_v(self) -> bool:
        return self.config.timestep_type == "continuous" and self.config.prediction_type == "v_prediction"

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        timesteps: Sequence[float] | None = None,
        sigmas: Sequence[float] | None = None,
    ) -> None:
        config, name = self.config, type(self).__name__
        if timesteps is not None and sigmas is not None:
            raise ValueError(f"{name}.set_timesteps: pass only one of `timesteps` or `sigmas`")
        if num_inference_steps is None and timesteps is None and sigmas is None:
            raise ValueError(
                f"{name}.set_timesteps: pass one of `num_inference_steps`, `timesteps` or `sigmas`"
            )
        if num_inference_steps is not None and (timesteps is not None or sigmas is not None):
            raise ValueError(
                f"{name}.set_timesteps: pass only one of `num_inference_steps`, `timesteps` or `sigmas`"
            )
        if timesteps is not None:
            for option in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"):
                if config[option]:
                    raise ValueError(
                        f"{name}.set_timesteps: custom `timesteps` cannot be used with {option}=True"
                    )
            if self._continuous_v:
                raise ValueError(
                    f"{name}.set_timesteps: custom `timesteps` cannot be used with timestep_type='continuous' "
                    "and prediction_type='v_prediction'"
                )
        if sigmas is not None:
            self.num_inference_steps = len(sigmas) - 1
            schedule_sigmas = np.asarray(sigmas, dtype=np.float32)
            schedule_timesteps = ss.timesteps_for_sigmas(schedule_sigmas[:-1], self.train_sigmas)
        else:
            if num_inference_steps is None:
                assert timesteps is not None  # the checks above let exactly one of the three through
                num_inference_steps = len(timesteps)
            self.num_inference_steps = num_inference_steps
            schedule_timesteps, schedule_sigmas = self._schedule(num_inference_steps, timesteps)
        schedule_sigmas = schedule_sigmas.astype(np.float32)
        if self._continuous_v:
            self.timesteps = np.float32(0.25) * np.log(schedule_sigmas[:-1])
        else:
            self.timesteps = np.asarray(schedule_timesteps).astype(np.float32)
        self.sigmas = schedule_sigmas
        self._step_index = None
        self._begin_index = None

    def _schedule(self, n: int, timesteps: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
        """Timesteps and sigmas (with the final sigma appended) for ``n`` steps."""
        config, train_sigmas = self.config, self.train_sigmas
        if timesteps is not None:
            steps = np.asarray(timesteps, dtype=np.float32)
        else:
            steps = ss.spaced_timesteps(
                config.timestep_spacing, config.num_train_timesteps, n, config.steps_offset
            )
        if config.interpolation_type == "linear":
            sigmas = ss.sigmas_at(steps, train_sigmas)
        else:
            sigmas = np.exp(linspace_f32(np.log(train_sigmas[-1]), np.log(train_sigmas[0]), n + 1))
        respaced = ss.respace_sigmas(config, sigmas, n)
        if respaced is not None:
            sigmas = respaced
            steps = ss.timesteps_for_sigmas(sigmas, train_sigmas)
        if config.final_sigmas_type == "sigma_min":
            sigma_last = train_sigmas[0]
        else:
            sigma_last = 0.0
        return steps, np.concatenate([sigmas, [sigma_last]])

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        s_churn: float = 0.0,
        s_tmin: float = 0.0,
        s_tmax: float = float("inf"),
        s_noise: float = 1.0,
        generator: Any = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep, refuse_index=True)
        sample = upcast(sample)
        sigma = self.sigmas[self._index]
        gamma = min(s_churn / (len(self.sigmas) - 1), 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * np.float32(gamma + 1)
        if gamma > 0:
            # Karras et al. Alg. 2: raise the noise level to sigma_hat before the Euler step.
            eps = draw_noise(generator, model_output.shape, like=model_output) * s_noise
            sample = sample + eps * float((sigma_hat**2 - sigma**2) ** 0.5)
        if self.config.prediction_type == "epsilon":
            pred_original_sample = ss.denoised(model_output, sample, sigma_hat, "epsilon")
        else:
            pred_original_sample = ss.denoised(model_output, sample, sigma, self.config.prediction_type)
        derivative = ss.to_d(sample, sigma_hat, pred_original_sample)
        dt = float(self.sigmas[self._index + 1] - sigma_hat)
        prev_sample = (sample + derivative * dt).astype(model_output.dtype, copy=False)
        self._step_index = self._index + 1
        if not return_dict:
            return prev_sample, pred_original_sample
        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        """v = sqrt(alpha-bar) * noise - sqrt(1 - alpha-bar) * sample at each timestep."""
        alpha_bar = self.alphas_cumprod[[self.index_for_timestep(as_scalar(t)) for t in timesteps]]
        return (
            per_sample(alpha_bar**0.5, sample) * noise - per_sample((1 - alpha_bar) ** 0.5, sample) * sample
        )
