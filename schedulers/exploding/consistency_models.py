"""Multistep consistency sampling (Song et al., Consistency Models, https://arxiv.org/abs/2303.01469,
Algorithm 1), diffusers' CMStochasticIterativeScheduler.

The consistency function f(x, sigma) = c_skip(sigma) x + c_out(sigma) F(x, sigma) maps any point of a trajectory
to its start; each step applies it, then noises the estimate back up to the next sigma of EDM's schedule
(Karras et al. eq. 5). The model sees x / sqrt(sigma^2 + sigma_data^2) and the timestep 250 log(sigma).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import array_module, draw_noise
from ..output import CMStochasticIterativeSchedulerOutput
from ..scheduler import step_indices
from . import schedule as xs
from .base import ExplodingScheduler

logger = logging.getLogger(__name__)


class CMStochasticIterativeScheduler(ExplodingScheduler):
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 40,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sigma_data: float = 0.5,
        s_noise: float = 1.0,
        rho: float = 7.0,
        clip_denoised: bool = True,
    ) -> None:
        sigmas = self._convert_to_karras(np.linspace(0, 1, num_train_timesteps))
        self.num_inference_steps = None
        self.sigmas = sigmas
        self.timesteps = self.sigma_to_t(sigmas)
        self.custom_timesteps = False
        self.is_scale_input_called = False
        self._step_index = None
        self._begin_index = None

    def _convert_to_karras(self, ramp: np.ndarray) -> np.ndarray:
        config = self.config
        return xs.karras_sigmas(ramp, config.sigma_min, config.sigma_max, config.rho)

    def sigma_to_t(self, sigmas: float | np.ndarray) -> np.ndarray:
        """The model's timestep for ``sigmas``: 1000 * 0.25 * log(sigma) (float64)."""
        sigmas = np.asarray(sigmas, dtype=np.float64)
        return 1000 * 0.25 * np.log(sigmas + 1e-44)

    def set_timesteps(
        self, num_inference_steps: int | None = None, device: Any = None, timesteps: list[int] | None = None
    ) -> None:
        """``num_inference_steps`` evenly spaced training steps, or custom integer ``timesteps`` (descending, below
        num_train_timesteps), mapped onto EDM's sigmas; ``timesteps`` becomes sigma_to_t of them."""
        T = self.config.num_train_timesteps
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(
                "CMStochasticIterativeScheduler.set_timesteps: pass exactly one of num_inference_steps or timesteps"
            )
        if timesteps is not None:
            steps = np.asarray([int(t) for t in timesteps], dtype=np.int64)
            if np.any(np.diff(steps) >= 0):
                raise ValueError(f"custom timesteps must be strictly descending, got {steps.tolist()}")
            if steps[0] >= T:
                raise ValueError(f"custom timesteps must start below num_train_timesteps={T}, got {steps[0]}")
            self.custom_timesteps = True
        else:
            assert num_inference_steps is not None
            if num_inference_steps > T:
                raise ValueError(
                    f"num_inference_steps={num_inference_steps} cannot exceed num_train_timesteps={T}: "
                    "the model was trained on that many steps"
                )
            self.num_inference_steps = num_inference_steps
            steps = (np.arange(num_inference_steps) * (T // num_inference_steps))[::-1].astype(np.int64)
            self.custom_timesteps = False
        sigmas = self._convert_to_karras(steps[::-1] / (T - 1))
        self.timesteps = self.sigma_to_t(sigmas)
        self.sigmas = np.concatenate([sigmas, [self.config.sigma_min]]).astype(np.float32)
        self._step_index = None
        self._begin_index = None

    def get_scalings(self, sigma: Any) -> tuple[Any, Any]:
        """EDM's c_skip and c_out (Karras et al. Table 1)."""
        sigma_data = self.config.sigma_data
        c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
        c_out = sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
        return c_skip, c_out

    def get_scalings_for_boundary_condition(self, sigma: Any) -> tuple[Any, Any]:
        """c_skip and c_out shifted so that f(x, sigma_min) = x (Song et al., Appendix C)."""
        sigma_min, sigma_data = self.config.sigma_min, self.config.sigma_data
        c_skip = sigma_data**2 / ((sigma - sigma_min) ** 2 + sigma_data**2)
        c_out = (sigma - sigma_min) * sigma_data / np.sqrt(sigma**2 + sigma_data**2)
        return c_skip, c_out

    def scale_model_input(self, sample: Any, timestep: Any = None) -> Any:
        """x / sqrt(sigma^2 + sigma_data^2), sigma that of ``timestep``."""
        if timestep is None and self.step_index is None:
            raise ValueError(
                "CMStochasticIterativeScheduler.scale_model_input needs the timestep: pass one of scheduler.timesteps"
            )
        if self.step_index is None:
            self._init_step_index(timestep)
        assert self._step_index is not None
        sigma = self.sigmas[self._step_index]
        self.is_scale_input_called = True
        return sample / float(np.sqrt(sigma**2 + self.config.sigma_data**2))

    def step(
        self, model_output: Any, timestep: Any, sample: Any, generator: Any = None, return_dict: bool = True
    ) -> CMStochasticIterativeSchedulerOutput | tuple:
        """x_0 = f(x, sigma) (clipped to [-1, 1] with ``clip_denoised``), then x_0 + sqrt(sigma'^2 - sigma_min^2) z."""
        check_not_an_index(timestep)
        if not self.is_scale_input_called:
            logger.warning(
                "CMStochasticIterativeScheduler: call scale_model_input before step, or the denoising is off"
            )
        config = self.config
        if self.step_index is None:
            self._init_step_index(timestep)
        assert self._step_index is not None
        index = self._step_index
        sigma = self.sigmas[index]
        sigma_next = self.sigmas[index + 1] if index + 1 < config.num_train_timesteps else self.sigmas[-1]
        c_skip, c_out = self.get_scalings_for_boundary_condition(sigma)
        denoised = float(c_out) * model_output + float(c_skip) * sample
        if config.clip_denoised:
            denoised = array_module(denoised).clip(denoised, -1, 1)
        timesteps = self.timesteps
        assert timesteps is not None
        if len(timesteps) > 1:
            noise = draw_noise(generator, model_output.shape, like=model_output)
        else:
            noise = array_module(model_output).zeros_like(model_output)
        z = noise * config.s_noise
        sigma_hat = np.clip(sigma_next, np.float32(config.sigma_min), np.float32(config.sigma_max))
        prev_sample = denoised + z * float(np.sqrt(sigma_hat**2 - config.sigma_min**2))
        self._step_index = index + 1
        if not return_dict:
            return (prev_sample,)
        return CMStochasticIterativeSchedulerOutput(prev_sample=prev_sample)

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        """x_0 + sigma noise, sigma that of each of ``timesteps`` (or of the pipeline's begin index)."""
        return xs.add_sigma_noise(original_samples, noise, self.sigmas[step_indices(self, timesteps)])


def check_not_an_index(timestep: Any) -> None:
    """Refuse an integer where a timestep of the schedule (a float, sigma_to_t of a sigma) belongs."""
    if isinstance(timestep, (int, np.integer)) or np.issubdtype(
        getattr(timestep, "dtype", np.float64), np.integer
    ):
        raise ValueError(
            f"CMStochasticIterativeScheduler.step: got the integer {timestep!r}, which looks like a step index (from "
            "enumerate); pass one of scheduler.timesteps instead"
        )
