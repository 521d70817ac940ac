"""DPM-Solver and DPM-Solver++ (singlestep), diffusers' ``DPMSolverSinglestepScheduler``.

The singlestep form (https://arxiv.org/abs/2206.00927, Algorithms 1-2; https://arxiv.org/abs/2211.01095)
groups the schedule into runs of 1, 2, 3 steps; within a run every update starts from the run's
first sample, and the intermediate model outputs give the higher-order terms.
Mirrors diffusers' ``scheduling_dpmsolver_singlestep.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import draw_noise
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as ms
from .base import ExponentialIntegratorScheduler
from .dpmsolver_multistep import DPMSolverMultistepScheduler
from .schedule import exp32

logger = logging.getLogger(__name__)

ALGORITHM_TYPES = ("dpmsolver", "dpmsolver++", "sde-dpmsolver++")
SOLVER_TYPES = ("midpoint", "heun")


def singlestep_orders(steps: int, solver_order: int, lower_order_final: bool, final_zero: bool) -> list[int]:
    """The order of each step: repeating runs 1, 2, (3); with ``lower_order_final`` the tail fits exactly."""
    runs = list(range(1, solver_order + 1))
    if not lower_order_final:
        orders = runs * (steps // solver_order)
    elif solver_order == 3:
        tail = {0: [1, 2, 1], 1: [1], 2: [1, 2]}[steps % 3]
        orders = runs * ((steps - len(tail)) // 3) + tail
    elif solver_order == 2:
        tail = [1, 1] if steps % 2 == 0 else [1]
        orders = runs * ((steps - len(tail)) // 2) + tail
    else:
        orders = [1] * steps
    if final_zero:
        orders[-1] = 1
    return orders


class DPMSolverSinglestepScheduler(ExponentialIntegratorScheduler):
    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | list[float] | None = None,
        solver_order: int = 2,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        sample_max_value: float = 1.0,
        algorithm_type: str = "dpmsolver++",
        solver_type: str = "midpoint",
        lower_order_final: bool = False,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        use_flow_sigmas: bool = False,
        flow_shift: float = 1.0,
        final_sigmas_type: str = "zero",
        lambda_min_clipped: float = -float("inf"),
        variance_type: str | None = None,
        use_dynamic_shifting: bool = False,
        time_shift_type: str = "exponential",
    ) -> None:
        name = type(self).__name__
        self._check_sigma_spacing()
        if algorithm_type == "deis":
            self.register_to_config(algorithm_type="dpmsolver++")
        if solver_type in ("logrho", "bh1", "bh2"):
            solver_type = "midpoint"
            self.register_to_config(solver_type=solver_type)
        check_choice(name, "algorithm_type", self.config.algorithm_type, ALGORITHM_TYPES)
        check_choice(name, "solver_type", solver_type, SOLVER_TYPES)
        check_choice(name, "solver_order", solver_order, (1, 2, 3))
        check_choice(name, "final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        check_choice(name, "variance_type", variance_type, (None, "learned", "learned_range"))
        check_choice(name, "use_flow_sigmas", use_flow_sigmas, (False,))
        check_choice(name, "use_dynamic_shifting", use_dynamic_shifting, (False,))
        # diffusers checks the name as given, so "deis" with final_sigmas_type="zero" is refused too.
        if algorithm_type not in ("dpmsolver++", "sde-dpmsolver++") and final_sigmas_type == "zero":
            raise ValueError(
                f"{name}: final_sigmas_type='zero' is not supported with algorithm_type={algorithm_type!r}; "
                "use final_sigmas_type='sigma_min'"
            )
        self._init_training_schedule()
        self.model_outputs: list[Any] = [None] * solver_order
        self.sample = None
        self.order_list = self.get_order_list(num_train_timesteps)

    def get_order_list(self, num_inference_steps: int) -> list[int]:
        config = self.config
        return singlestep_orders(
            num_inference_steps,
            config.solver_order,
            config.lower_order_final,
            config.final_sigmas_type == "zero",
        )

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        mu: float | None = None,
        timesteps: list[int] | np.ndarray | None = None,
    ) -> None:
        """Choose the inference schedule: ``num_inference_steps`` spaced steps, or explicit ``timesteps``."""
        config = self.config
        name = type(self).__name__
        if mu is not None:
            raise NotImplementedError(f"{name}: mu (dynamic shifting) is not supported")
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(f"{name}.set_timesteps: pass exactly one of num_inference_steps or timesteps")
        spacing = ms.sigma_spacing(config)
        if timesteps is not None and spacing != "interp":
            raise ValueError(
                f"{name}.set_timesteps: timesteps= cannot be used with use_{spacing}_sigmas=True"
            )
        if num_inference_steps is None:
            assert timesteps is not None  # the check above lets exactly one of the two through
            num_inference_steps = len(timesteps)
        self.num_inference_steps = num_inference_steps
        if timesteps is not None:
            timesteps = np.asarray(timesteps).astype(np.int64)
        else:
            timesteps = ms.multistep_timesteps(
                "linspace",
                num_inference_steps,
                config.num_train_timesteps,
                last_timestep=ms.clipped_timestep_count(self.alphas_cumprod, config.lambda_min_clipped),
            )
        sigmas, timesteps = ms.spaced_sigmas(
            spacing,
            self.sigmas_train,
            timesteps,
            num_inference_steps,
            sigma_min=config.get("sigma_min"),
            sigma_max=config.get("sigma_max"),
        )
        last = ms.final_sigma(config.final_sigmas_type, self.alphas_cumprod)
        self.sigmas = np.concatenate([sigmas, [last]]).astype(np.float32)
        self.timesteps = np.asarray(timesteps).astype(np.int64)
        self.model_outputs = [None] * config.solver_order
        self.sample = None
        if not config.lower_order_final and num_inference_steps % config.solver_order != 0:
            logger.warning(
                "%s: num_inference_steps=%d is not a multiple of solver_order=%d; setting lower_order_final=True",
                name,
                num_inference_steps,
                config.solver_order,
            )
            self.register_to_config(lower_order_final=True)
        if not self.config.lower_order_final and config.final_sigmas_type == "zero":
            logger.warning("%s: final_sigmas_type='zero' needs lower_order_final=True; setting it", name)
            self.register_to_config(lower_order_final=True)
        self.order_list = self.get_order_list(num_inference_steps)
        self._step_index = None
        self._begin_index = None

    # The model-output conversion and the first-order step are the multistep solver's.
    convert_model_output = DPMSolverMultistepScheduler.convert_model_output
    dpm_solver_first_order_update = DPMSolverMultistepScheduler.dpm_solver_first_order_update

    def singlestep_dpm_solver_second_order_update(
        self, model_output_list: list[Any], sample: Any, noise: Any = None
    ) -> Any:
        """Second order from the run's start s1 over [s1, t], using the output at the midpoint s0."""
        i = self._index
        (alpha_t, sigma_t, lambda_t), (_, _, lambda_s0), (alpha_s1, sigma_s1, lambda_s1) = self._lambdas(
            i + 1, i, i - 1
        )
        m0, m1 = model_output_list[-1], model_output_list[-2]
        h, h_0 = lambda_t - lambda_s1, lambda_s0 - lambda_s1
        r0 = h_0 / h
        d0, d1 = m1, float(1.0 / r0) * (m0 - m1)
        algorithm, heun = self.config.algorithm_type, self.config.solver_type == "heun"
        if algorithm == "dpmsolver++":
            phi_1 = exp32(-h) - 1.0
            c1 = -(phi_1 / h + 1.0) if heun else 0.5 * phi_1
            return float(sigma_t / sigma_s1) * sample - float(alpha_t * phi_1) * d0 - float(alpha_t * c1) * d1
        if algorithm == "dpmsolver":
            phi_1 = exp32(h) - 1.0
            c1 = phi_1 / h - 1.0 if heun else 0.5 * phi_1
            return float(alpha_t / alpha_s1) * sample - float(sigma_t * phi_1) * d0 - float(sigma_t * c1) * d1
        phi_1 = 1 - exp32(-2.0 * h)  # sde-dpmsolver++
        c1 = phi_1 / (-2.0 * h) + 1.0 if heun else 0.5 * phi_1
        return (
            float(sigma_t / sigma_s1 * exp32(-h)) * sample
            + float(alpha_t * phi_1) * d0
            + float(alpha_t * c1) * d1
            + float(sigma_t * np.sqrt(1.0 - exp32(-2 * h))) * noise
        )

    def singlestep_dpm_solver_third_order_update(
        self, model_output_list: list[Any], sample: Any, noise: Any = None
    ) -> Any:
        """Third order from the run's start s2 over [s2, t], using the outputs at s1 and s0."""
        i = self._index
        (
            (alpha_t, sigma_t, lambda_t),
            (_, _, lambda_s0),
            (_, _, lambda_s1),
            (alpha_s2, sigma_s2, lambda_s2),
        ) = self._lambdas(i + 1, i, i - 1, i - 2)
        m0, m1, m2 = model_output_list[-1], model_output_list[-2], model_output_list[-3]
        h, h_0, h_1 = lambda_t - lambda_s2, lambda_s0 - lambda_s2, lambda_s1 - lambda_s2
        r0, r1 = h_0 / h, h_1 / h
        d0 = m2
        d1_0, d1_1 = float(1.0 / r1) * (m1 - m2), float(1.0 / r0) * (m0 - m2)
        algorithm, heun = self.config.algorithm_type, self.config.solver_type == "heun"
        # midpoint uses only the outer difference d1_1; heun the full second-order expansion.
        if heun:
            d1 = (float(r0) * d1_0 - float(r1) * d1_1) / float(r0 - r1)
            d2 = 2.0 * (d1_1 - d1_0) / float(r0 - r1)
        if algorithm == "dpmsolver++":
            phi_1 = exp32(-h) - 1.0
            x_t = float(sigma_t / sigma_s2) * sample - float(alpha_t * phi_1) * d0
            if not heun:
                return x_t + float(alpha_t * (phi_1 / h + 1.0)) * d1_1
            return (
                x_t
                + float(alpha_t * (phi_1 / h + 1.0)) * d1
                - float(alpha_t * ((phi_1 + h) / h**2 - 0.5)) * d2
            )
        if algorithm == "dpmsolver":
            phi_1 = exp32(h) - 1.0
            x_t = float(alpha_t / alpha_s2) * sample - float(sigma_t * phi_1) * d0
            if not heun:
                return x_t - float(sigma_t * (phi_1 / h - 1.0)) * d1_1
            return (
                x_t
                - float(sigma_t * (phi_1 / h - 1.0)) * d1
                - float(sigma_t * ((phi_1 - h) / h**2 - 0.5)) * d2
            )
        phi_1 = 1.0 - exp32(-2.0 * h)  # sde-dpmsolver++
        x_t = float(sigma_t / sigma_s2 * exp32(-h)) * sample + float(alpha_t * phi_1) * d0
        if not heun:
            x_t = x_t + float(alpha_t * (phi_1 / (-2.0 * h) + 1.0)) * d1_1
        else:
            x_t = (
                x_t
                + float(alpha_t * (phi_1 / (-2.0 * h) + 1.0)) * d1
                + float(alpha_t * ((phi_1 + (-2.0 * h)) / (-2.0 * h) ** 2 - 0.5)) * d2
            )
        return x_t + float(sigma_t * np.sqrt(1.0 - exp32(-2 * h))) * noise

    def singlestep_dpm_solver_update(
        self, model_output_list: list[Any], sample: Any, order: int, noise: Any = None
    ) -> Any:
        if order == 1:
            return self.dpm_solver_first_order_update(model_output_list[-1], sample, noise)
        if order == 2:
            return self.singlestep_dpm_solver_second_order_update(model_output_list, sample, noise)
        if order == 3:
            return self.singlestep_dpm_solver_third_order_update(model_output_list, sample, noise)
        raise ValueError(f"order must be 1, 2 or 3, got {order}")

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        generator: Any = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep)
        model_output = self.convert_model_output(model_output, sample=sample)
        self.model_outputs = [*self.model_outputs[1:], model_output]
        noise = None
        if self.config.algorithm_type == "sde-dpmsolver++":
            noise = draw_noise(generator, model_output.shape, like=model_output)
        order = self.order_list[self._index]
        while self.model_outputs[-order] is None:
            order -= 1
        if order == 1:  # a new run starts here
            self.sample = sample
        prev_sample = self.singlestep_dpm_solver_update(self.model_outputs, self.sample, order, noise)
        self._step_index = self._index + 1
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)
