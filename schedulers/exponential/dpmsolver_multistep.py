"""DPM-Solver and DPM-Solver++ (multistep), diffusers' ``DPMSolverMultistepScheduler``.

DPM-Solver (https://arxiv.org/abs/2206.00927) integrates the diffusion ODE exactly in its linear part
and Taylor-expands the noise prediction in lambda; DPM-Solver++ (https://arxiv.org/abs/2211.01095)
does the same with the data prediction x_0, and its SDE variant adds fresh noise each step.
The multistep form reuses the previous steps' model outputs for the higher-order terms.
Mirrors diffusers' ``scheduling_dpmsolver_multistep.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import array_module, draw_noise
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as ms
from .base import ExponentialIntegratorScheduler
from .schedule import exp32

ALGORITHM_TYPES = ("dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++")
SOLVER_TYPES = ("midpoint", "heun")


class DPMSolverMultistepScheduler(ExponentialIntegratorScheduler):
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
        lower_order_final: bool = True,
        euler_at_final: bool = False,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        use_lu_lambdas: bool = False,
        use_flow_sigmas: bool = False,
        flow_shift: float = 1.0,
        final_sigmas_type: str = "zero",
        lambda_min_clipped: float = -float("inf"),
        variance_type: str | None = None,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
        use_dynamic_shifting: bool = False,
        time_shift_type: str = "exponential",
    ):
        name = type(self).__name__
        self._check_sigma_spacing()
        # diffusers maps the other solvers' names onto its own, so that from_config swaps work.
        if algorithm_type == "deis":
            self.register_to_config(algorithm_type="dpmsolver++")
        if solver_type in ("logrho", "bh1", "bh2"):
            solver_type = "midpoint"
            self.register_to_config(solver_type=solver_type)
        check_choice(name, "algorithm_type", self.config.algorithm_type, ALGORITHM_TYPES)
        check_choice(name, "solver_type", solver_type, SOLVER_TYPES)
        check_choice(name, "solver_order", solver_order, (1, 2, 3))
        check_choice(name, "timestep_spacing", timestep_spacing, ms.TIMESTEP_SPACINGS)
        check_choice(name, "final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        check_choice(name, "variance_type", variance_type, (None, "learned", "learned_range"))
        check_choice(name, "use_dynamic_shifting", use_dynamic_shifting, (False,))
        # diffusers checks the name as given, so "deis" with final_sigmas_type="zero" is refused too.
        if algorithm_type not in ("dpmsolver++", "sde-dpmsolver++") and final_sigmas_type == "zero":
            raise ValueError(
                f"{name}: final_sigmas_type='zero' is not supported with algorithm_type={algorithm_type!r}; "
                "use final_sigmas_type='sigma_min'"
            )
        if solver_order == 3 and algorithm_type == "sde-dpmsolver":
            raise NotImplementedError(
                f"{name}: solver_order=3 is not supported with algorithm_type='sde-dpmsolver'"
            )

        self._init_training_schedule()
        self.model_outputs: list[Any] = [None] * solver_order
        self.lower_order_nums = 0

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
        if timesteps is not None and spacing not in ("interp", "flow"):
            raise ValueError(
                f"{name}.set_timesteps: timesteps= cannot be used with use_{spacing}_sigmas=True"
            )
        if spacing == "flow" and timesteps is not None:
            raise NotImplementedError(
                f"{name}.set_timesteps: timesteps= with use_flow_sigmas is not supported"
            )

        if timesteps is not None:
            steps = np.asarray(timesteps).astype(np.int64)
            n = len(steps)
        else:
            assert num_inference_steps is not None  # the check above lets exactly one of the two through
            n = num_inference_steps
            steps = ms.multistep_timesteps(
                config.timestep_spacing,
                n,
                config.num_train_timesteps,
                steps_offset=config.steps_offset,
                last_timestep=ms.clipped_timestep_count(self.alphas_cumprod, config.lambda_min_clipped),
            )
        if spacing == "flow":
            sigmas = ms.flow_sigmas(n, config.num_train_timesteps, config.flow_shift)
            steps = sigmas * config.num_train_timesteps
        else:
            sigmas, steps = ms.spaced_sigmas(
                spacing,
                self.sigmas_train,
                steps,
                n,
                round_timesteps=config.beta_schedule != "squaredcos_cap_v2",
                sigma_min=config.get("sigma_min"),
                sigma_max=config.get("sigma_max"),
            )
        last = ms.final_sigma(config.final_sigmas_type, self.alphas_cumprod)
        self.sigmas = np.concatenate([sigmas, [last]]).astype(np.float32)
        self.timesteps = np.asarray(steps).astype(np.int64)
        self.num_inference_steps = len(self.timesteps)
        self.model_outputs = [None] * config.solver_order
        self.lower_order_nums = 0
        self._step_index = None
        self._begin_index = None

    def convert_model_output(self, model_output: Any, sample: Any) -> Any:
        """x_0 for the ++ (data-prediction) algorithms, eps for the others."""
        if self.config.variance_type in ("learned", "learned_range"):
            model_output = model_output[:, :3]
        if self.config.algorithm_type in ("dpmsolver++", "sde-dpmsolver++"):
            return self._data_prediction(model_output, sample)
        return self._noise_prediction(model_output, sample)

    def dpm_solver_first_order_update(self, model_output: Any, sample: Any, noise: Any = None) -> Any:
        """One step of DPM-Solver-1 (DDIM in lambda); the SDE variants add exactly scaled noise."""
        i = self._index
        (alpha_t, sigma_t, lambda_t), (alpha_s, sigma_s, lambda_s) = self._lambdas(i + 1, i)
        h = lambda_t - lambda_s
        algorithm = self.config.algorithm_type
        if algorithm == "dpmsolver++":
            return float(sigma_t / sigma_s) * sample - float(alpha_t * (exp32(-h) - 1.0)) * model_output
        if algorithm == "dpmsolver":
            return float(alpha_t / alpha_s) * sample - float(sigma_t * (exp32(h) - 1.0)) * model_output
        if algorithm == "sde-dpmsolver++":
            return (
                float(sigma_t / sigma_s * exp32(-h)) * sample
                + float(alpha_t * (1 - exp32(-2.0 * h))) * model_output
                + float(sigma_t * np.sqrt(1.0 - exp32(-2 * h))) * noise
            )
        return (  # sde-dpmsolver
            float(alpha_t / alpha_s) * sample
            - float(2.0 * (sigma_t * (exp32(h) - 1.0))) * model_output
            + float(sigma_t * np.sqrt(exp32(2 * h) - 1.0)) * noise
        )

    def multistep_dpm_solver_second_order_update(
        self, model_output_list: list[Any], sample: Any, noise: Any = None
    ) -> Any:
        """Second order from the last two model outputs: D1 is their divided difference in lambda."""
        i = self._index
        (alpha_t, sigma_t, lambda_t), (alpha_s0, sigma_s0, lambda_s0), (_, _, lambda_s1) = self._lambdas(
            i + 1, i, i - 1
        )
        m0, m1 = model_output_list[-1], model_output_list[-2]
        h, h_0 = lambda_t - lambda_s0, lambda_s0 - lambda_s1
        r0 = h_0 / h
        d0, d1 = m0, float(1.0 / r0) * (m0 - m1)
        algorithm, heun = self.config.algorithm_type, self.config.solver_type == "heun"
        if algorithm == "dpmsolver++":
            phi_1 = exp32(-h) - 1.0
            c1 = -(phi_1 / h + 1.0) if heun else 0.5 * phi_1
            return float(sigma_t / sigma_s0) * sample - float(alpha_t * phi_1) * d0 - float(alpha_t * c1) * d1
        if algorithm == "dpmsolver":
            phi_1 = exp32(h) - 1.0
            c1 = phi_1 / h - 1.0 if heun else 0.5 * phi_1
            return float(alpha_t / alpha_s0) * sample - float(sigma_t * phi_1) * d0 - float(sigma_t * c1) * d1
        if algorithm == "sde-dpmsolver++":
            phi_1 = 1 - exp32(-2.0 * h)
            c1 = phi_1 / (-2.0 * h) + 1.0 if heun else 0.5 * phi_1
            return (
                float(sigma_t / sigma_s0 * exp32(-h)) * sample
                + float(alpha_t * phi_1) * d0
                + float(alpha_t * c1) * d1
                + float(sigma_t * np.sqrt(1.0 - exp32(-2 * h))) * noise
            )
        phi_1 = exp32(h) - 1.0  # sde-dpmsolver
        c1 = 2.0 * (phi_1 / h - 1.0) if heun else phi_1
        return (
            float(alpha_t / alpha_s0) * sample
            - float(2.0 * (sigma_t * phi_1)) * d0
            - float(sigma_t * c1) * d1
            + float(sigma_t * np.sqrt(exp32(2 * h) - 1.0)) * noise
        )

    def multistep_dpm_solver_third_order_update(
        self, model_output_list: list[Any], sample: Any, noise: Any = None
    ) -> Any:
        """Third order from the last three model outputs (first and second divided differences)."""
        i = self._index
        (
            (alpha_t, sigma_t, lambda_t),
            (alpha_s0, sigma_s0, lambda_s0),
            (_, _, lambda_s1),
            (_, _, lambda_s2),
        ) = self._lambdas(i + 1, i, i - 1, i - 2)
        m0, m1, m2 = model_output_list[-1], model_output_list[-2], model_output_list[-3]
        h, h_0, h_1 = lambda_t - lambda_s0, lambda_s0 - lambda_s1, lambda_s1 - lambda_s2
        r0, r1 = h_0 / h, h_1 / h
        d0 = m0
        d1_0, d1_1 = float(1.0 / r0) * (m0 - m1), float(1.0 / r1) * (m1 - m2)
        d1 = d1_0 + float(r0 / (r0 + r1)) * (d1_0 - d1_1)
        d2 = float(1.0 / (r0 + r1)) * (d1_0 - d1_1)
        algorithm = self.config.algorithm_type
        if algorithm == "dpmsolver++":
            phi_1 = exp32(-h) - 1.0
            return (
                float(sigma_t / sigma_s0) * sample
                - float(alpha_t * phi_1) * d0
                + float(alpha_t * (phi_1 / h + 1.0)) * d1
                - float(alpha_t * ((phi_1 + h) / h**2 - 0.5)) * d2
            )
        if algorithm == "dpmsolver":
            phi_1 = exp32(h) - 1.0
            return (
                float(alpha_t / alpha_s0) * sample
                - float(sigma_t * phi_1) * d0
                - float(sigma_t * (phi_1 / h - 1.0)) * d1
                - float(sigma_t * ((phi_1 - h) / h**2 - 0.5)) * d2
            )
        phi_1 = 1.0 - exp32(-2.0 * h)  # sde-dpmsolver++
        return (
            float(sigma_t / sigma_s0 * exp32(-h)) * sample
            + float(alpha_t * phi_1) * d0
            + float(alpha_t * (phi_1 / (-2.0 * h) + 1.0)) * d1
            + float(alpha_t * ((phi_1 - 2.0 * h) / (2.0 * h) ** 2 - 0.5)) * d2
            + float(sigma_t * np.sqrt(1.0 - exp32(-2 * h))) * noise
        )

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        generator: Any = None,
        variance_noise: Any = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep)
        config = self.config
        xp = array_module(sample)
        n = len(self._chosen_timesteps)
        last_step = self._index == n - 1
        lower_order_final = last_step and (
            config.euler_at_final
            or (config.lower_order_final and n < 15)
            or config.final_sigmas_type == "zero"
        )
        lower_order_second = self._index == n - 2 and config.lower_order_final and n < 15

        model_output = self.convert_model_output(model_output, sample=sample)
        self.model_outputs = [*self.model_outputs[1:], model_output]
        sample = sample.astype(xp.float32)  # diffusers integrates from a float32 sample
        noise = None
        if config.algorithm_type in ("sde-dpmsolver", "sde-dpmsolver++"):
            if variance_noise is None:
                noise = draw_noise(generator, model_output.shape, like=sample)
            else:
                noise = variance_noise.astype(xp.float32)

        if config.solver_order == 1 or self.lower_order_nums < 1 or lower_order_final:
            prev_sample = self.dpm_solver_first_order_update(model_output, sample, noise)
        elif config.solver_order == 2 or self.lower_order_nums < 2 or lower_order_second:
            prev_sample = self.multistep_dpm_solver_second_order_update(self.model_outputs, sample, noise)
        else:
            prev_sample = self.multistep_dpm_solver_third_order_update(self.model_outputs, sample, noise)
        self.lower_order_nums = min(self.lower_order_nums + 1, config.solver_order)
        prev_sample = prev_sample.astype(model_output.dtype, copy=False)
        self._step_index = self._index + 1
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)
