"""DEIS (multistep, log-rho), diffusers' ``DEISMultistepScheduler``.

DEIS (Zhang & Chen, https://arxiv.org/abs/2204.13902) integrates the exponential-integrator form of
the diffusion ODE in rho = sigma_t / alpha_t, fitting the noise predictions of the last steps with a
Lagrange polynomial in log rho and integrating it exactly.
Mirrors diffusers' ``scheduling_deis_multistep.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as ms
from .base import ExponentialIntegratorScheduler


def _lagrange_integral_2(t: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """Antiderivative of the Lagrange basis through log b, log c (the one that is 1 at b), times rho."""
    return t * (-np.log(c) + np.log(t) - 1) / (np.log(b) - np.log(c))


def _lagrange_integral_3(t: np.float32, b: np.float32, c: np.float32, d: np.float32) -> np.float32:
    """Same for the quadratic basis through log b, log c, log d."""
    log_t, log_c, log_d = np.log(t), np.log(c), np.log(d)
    numerator = t * (log_c * (log_d - log_t + 1) - log_d * log_t + log_d + log_t**2 - 2 * log_t + 2)
    return numerator / ((np.log(b) - log_c) * (np.log(b) - log_d))


class DEISMultistepScheduler(ExponentialIntegratorScheduler):
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
        algorithm_type: str = "deis",
        solver_type: str = "logrho",
        lower_order_final: bool = True,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        use_flow_sigmas: bool = False,
        flow_shift: float = 1.0,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        use_dynamic_shifting: bool = False,
        time_shift_type: str = "exponential",
    ) -> None:
        name = type(self).__name__
        self._check_sigma_spacing()
        # diffusers maps the other solvers' names onto its own, so that from_config swaps work.
        if algorithm_type in ("dpmsolver", "dpmsolver++"):
            self.register_to_config(algorithm_type="deis")
        if solver_type in ("midpoint", "heun", "bh1", "bh2"):
            self.register_to_config(solver_type="logrho")
        check_choice(name, "algorithm_type", self.config.algorithm_type, ("deis",))
        check_choice(name, "solver_type", self.config.solver_type, ("logrho",))
        check_choice(name, "solver_order", solver_order, (1, 2, 3))
        check_choice(name, "timestep_spacing", timestep_spacing, ms.TIMESTEP_SPACINGS)
        check_choice(name, "use_flow_sigmas", use_flow_sigmas, (False,))
        check_choice(name, "use_dynamic_shifting", use_dynamic_shifting, (False,))
        self._init_training_schedule()
        self.model_outputs: list[Any] = [None] * solver_order
        self.lower_order_nums = 0

    def set_timesteps(self, num_inference_steps: int, device: Any = None, mu: float | None = None) -> None:
        """Choose ``num_inference_steps`` spaced steps of the training schedule."""
        config = self.config
        if mu is not None:
            raise NotImplementedError(f"{type(self).__name__}: mu (dynamic shifting) is not supported")
        timesteps = ms.multistep_timesteps(
            config.timestep_spacing,
            num_inference_steps,
            config.num_train_timesteps,
            steps_offset=config.steps_offset,
        )
        spacing = ms.sigma_spacing(config)
        sigmas, timesteps = ms.spaced_sigmas(
            spacing,
            self.sigmas_train,
            timesteps,
            num_inference_steps,
            sigma_min=config.get("sigma_min"),
            sigma_max=config.get("sigma_max"),
        )
        # DEIS never steps to sigma = 0: it ends at the smallest sigma of the schedule.
        last = ms.final_sigma("sigma_min", self.alphas_cumprod) if spacing == "interp" else sigmas[-1]
        self.sigmas = np.concatenate([sigmas, [last]]).astype(np.float32)
        self.timesteps = np.asarray(timesteps).astype(np.int64)
        self.num_inference_steps = len(self.timesteps)
        self.model_outputs = [None] * config.solver_order
        self.lower_order_nums = 0
        self._step_index = None
        self._begin_index = None

    def convert_model_output(self, model_output: Any, sample: Any) -> Any:
        """The noise prediction eps (through x_0, so that thresholding can apply)."""
        x0 = self._data_prediction(model_output, sample)
        return ms.epsilon_from_x0(x0, sample, *self._output_alpha_sigma())

    def deis_first_order_update(self, model_output: Any, sample: Any) -> Any:
        """DEIS-1, the same as DDIM."""
        i = self._index
        (alpha_t, sigma_t, lambda_t), (alpha_s, _, lambda_s) = self._lambdas(i + 1, i)
        h = lambda_t - lambda_s
        return float(alpha_t / alpha_s) * sample - float(sigma_t * (ms.exp32(h) - 1.0)) * model_output

    def _rhos(self, *indices: int) -> tuple[list[tuple[np.float32, np.float32]], list[np.float32]]:
        """(alpha_t, sigma_t) and rho = sigma_t / alpha_t at each schedule index."""
        pairs = [self._alpha_sigma(i) for i in indices]
        return pairs, [sigma / alpha for alpha, sigma in pairs]

    def multistep_deis_second_order_update(self, model_output_list: list[Any], sample: Any) -> Any:
        """x_t = alpha_t (x_s / alpha_s + sum_j C_j eps_j), C_j the integral of the linear Lagrange basis."""
        i = self._index
        ((alpha_t, _), (alpha_s0, _), _), (rho_t, rho_s0, rho_s1) = self._rhos(i + 1, i, i - 1)
        m0, m1 = model_output_list[-1], model_output_list[-2]
        coef1 = _lagrange_integral_2(rho_t, rho_s0, rho_s1) - _lagrange_integral_2(rho_s0, rho_s0, rho_s1)
        coef2 = _lagrange_integral_2(rho_t, rho_s1, rho_s0) - _lagrange_integral_2(rho_s0, rho_s1, rho_s0)
        return float(alpha_t) * (sample / float(alpha_s0) + float(coef1) * m0 + float(coef2) * m1)

    def multistep_deis_third_order_update(self, model_output_list: list[Any], sample: Any) -> Any:
        """As the second order, with the quadratic Lagrange basis through the last three steps."""
        i = self._index
        ((alpha_t, _), (alpha_s0, _), _, _), (rho_t, rho_s0, rho_s1, rho_s2) = self._rhos(
            i + 1, i, i - 1, i - 2
        )
        m0, m1, m2 = model_output_list[-1], model_output_list[-2], model_output_list[-3]
        f = _lagrange_integral_3
        coef1 = f(rho_t, rho_s0, rho_s1, rho_s2) - f(rho_s0, rho_s0, rho_s1, rho_s2)
        coef2 = f(rho_t, rho_s1, rho_s2, rho_s0) - f(rho_s0, rho_s1, rho_s2, rho_s0)
        coef3 = f(rho_t, rho_s2, rho_s0, rho_s1) - f(rho_s0, rho_s2, rho_s0, rho_s1)
        return float(alpha_t) * (
            sample / float(alpha_s0) + float(coef1) * m0 + float(coef2) * m1 + float(coef3) * m2
        )

    def step(
        self, model_output: Any, timestep: Any, sample: Any, generator: Any = None, return_dict: bool = True
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep)
        config = self.config
        n = len(self._chosen_timesteps)
        lower_order_final = self._index == n - 1 and config.lower_order_final and n < 15
        lower_order_second = self._index == n - 2 and config.lower_order_final and n < 15

        model_output = self.convert_model_output(model_output, sample=sample)
        self.model_outputs = [*self.model_outputs[1:], model_output]
        if config.solver_order == 1 or self.lower_order_nums < 1 or lower_order_final:
            prev_sample = self.deis_first_order_update(model_output, sample)
        elif config.solver_order == 2 or self.lower_order_nums < 2 or lower_order_second:
            prev_sample = self.multistep_deis_second_order_update(self.model_outputs, sample)
        else:
            prev_sample = self.multistep_deis_third_order_update(self.model_outputs, sample)
        self.lower_order_nums = min(self.lower_order_nums + 1, config.solver_order)
        self._step_index = self._index + 1
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)
