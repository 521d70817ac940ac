"""UniPC (multistep predictor-corrector), diffusers' ``UniPCMultistepScheduler``.

UniPC (Zhao et al., https://arxiv.org/abs/2302.04867) pairs a predictor UniP with a corrector UniC
that reuses the model output at the predicted point, raising the order by one at no extra model
call. Both expand the data (or noise) prediction in lambda with coefficients rho solving
R rho = b (eq. 8 of the paper), for B(h) = h (bh1) or e^h - 1 (bh2).
Mirrors diffusers' ``scheduling_unipc_multistep.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..config import register_to_config
from ..output import SchedulerOutput
from ..scheduler import check_choice
from . import schedule as ms
from .base import ExponentialIntegratorScheduler


class PredictorSolver(Protocol):
    """What UniPC needs of ``solver_p``, the scheduler that replaces its predictor (any sdrt scheduler)."""

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None: ...

    def step(self, model_output: Any, timestep: Any, sample: Any) -> Any: ...


def _combine(weights: np.ndarray, differences: list[Any]) -> Any:
    """sum_k weights[k] * differences[k], or 0 when there are none."""
    total = 0
    for w, d in zip(weights, differences):
        total = total + float(w) * d
    return total


class UniPCMultistepScheduler(ExponentialIntegratorScheduler):
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
        predict_x0: bool = True,
        solver_type: str = "bh2",
        lower_order_final: bool = True,
        disable_corrector: list[int] = [],  # noqa: B006 (diffusers' default, never mutated)
        solver_p: PredictorSolver | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        use_flow_sigmas: bool = False,
        flow_shift: float = 1.0,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        final_sigmas_type: str = "zero",
        rescale_betas_zero_snr: bool = False,
        use_dynamic_shifting: bool = False,
        time_shift_type: str = "exponential",
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        shift_terminal: float | None = None,
    ) -> None:
        name = type(self).__name__
        self._check_sigma_spacing()
        # diffusers maps the other solvers' names onto its own, so that from_config swaps work.
        if solver_type in ("midpoint", "heun", "logrho"):
            self.register_to_config(solver_type="bh2")
        check_choice(name, "solver_type", self.config.solver_type, ("bh1", "bh2"))
        check_choice(name, "solver_order", solver_order, (1, 2, 3))
        check_choice(name, "timestep_spacing", timestep_spacing, ms.TIMESTEP_SPACINGS)
        check_choice(name, "final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        check_choice(name, "use_flow_sigmas", use_flow_sigmas, (False,))
        check_choice(name, "use_dynamic_shifting", use_dynamic_shifting, (False,))
        check_choice(name, "shift_terminal", shift_terminal, (None,))
        self._init_training_schedule()
        self.predict_x0 = predict_x0
        self.disable_corrector = disable_corrector
        self.solver_p = solver_p
        self.timesteps = np.arange(num_train_timesteps - 1, -1, -1, dtype=np.float32)
        self.num_inference_steps = None
        self.model_outputs: list[Any] = [None] * solver_order
        self.timestep_list: list[Any] = [None] * solver_order
        self.lower_order_nums = 0
        self.this_order = 1
        self.last_sample = None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        sigmas: list[float] | None = None,
        mu: float | None = None,
    ) -> None:
        """Choose ``num_inference_steps`` spaced steps of the training schedule."""
        config = self.config
        name = type(self).__name__
        if sigmas is not None:
            raise ValueError(
                f"{name}.set_timesteps: sigmas= needs use_flow_sigmas=True, which sdrt does not support"
            )
        if mu is not None:
            raise NotImplementedError(f"{name}: mu (dynamic shifting) is not supported")
        if num_inference_steps is None:
            raise ValueError(f"{name}.set_timesteps: pass num_inference_steps")
        timesteps = ms.multistep_timesteps(
            config.timestep_spacing,
            num_inference_steps,
            config.num_train_timesteps,
            steps_offset=config.steps_offset,
        )
        spacing = ms.sigma_spacing(config)
        spaced, timesteps = ms.spaced_sigmas(
            spacing,
            self.sigmas_train,
            timesteps,
            num_inference_steps,
            sigma_min=config.sigma_min,
            sigma_max=config.sigma_max,
        )
        if config.final_sigmas_type == "sigma_min" and spacing != "interp":
            last = spaced[-1]
        else:
            last = ms.final_sigma(config.final_sigmas_type, self.alphas_cumprod)
        self.sigmas = np.concatenate([spaced, [last]]).astype(np.float32)
        self.timesteps = np.asarray(timesteps).astype(np.int64)
        self.num_inference_steps = len(self.timesteps)
        self.model_outputs = [None] * config.solver_order
        self.lower_order_nums = 0
        self.last_sample = None
        if self.solver_p:
            self.solver_p.set_timesteps(self.num_inference_steps, device=device)
        self._step_index = None
        self._begin_index = None

    def convert_model_output(self, model_output: Any, sample: Any) -> Any:
        """x_0 when ``predict_x0`` (UniPC for the data prediction), else eps."""
        if self.predict_x0:
            return self._data_prediction(model_output, sample)
        alpha, sigma = self._alpha_sigma(self._index)
        return ms.to_epsilon(model_output, sample, self.config.prediction_type, alpha, sigma)

    def _uni_coefficients(
        self, t: int, s0: int, earlier: list[int], order: int
    ) -> tuple[dict[str, np.float32], np.ndarray, np.ndarray, list[np.float32]]:
        """The scalars of one UniP/UniC update from schedule index ``s0`` to ``t``.

        Returns the step scalars, the matrix R (R[k, j] = r_j^k), the vector b of the
        phi_{k+1}(h) terms divided by B(h), and r_j = (lambda_{s_j} - lambda_{s0}) / h of ``earlier``.
        """
        (alpha_t, sigma_t, lambda_t), (alpha_s0, sigma_s0, lambda_s0) = self._lambdas(t, s0)
        h = lambda_t - lambda_s0
        rks = [(ms.lambda_at(self.sigmas[si]) - lambda_s0) / h for si in earlier]
        hh = -h if self.predict_x0 else h
        h_phi_1 = ms.expm1_32(hh)  # h phi_1(h) = e^h - 1
        B_h = hh if self.config.solver_type == "bh1" else ms.expm1_32(hh)
        r = np.array([*rks, 1.0], dtype=np.float32)
        rows, b = [], []
        h_phi_k, factorial = h_phi_1 / hh - 1, 1
        for k in range(1, order + 1):
            rows.append(r ** (k - 1))
            b.append(h_phi_k * factorial / B_h)
            factorial *= k + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        scalars = {
            "alpha_t": alpha_t,
            "sigma_t": sigma_t,
            "alpha_s0": alpha_s0,
            "sigma_s0": sigma_s0,
            "h_phi_1": h_phi_1,
            "B_h": B_h,
        }
        return scalars, np.stack(rows), np.array(b, dtype=np.float32), rks

    def _base_step(self, x: Any, m0: Any, c: dict[str, np.float32]) -> tuple[Any, np.float32]:
        """The first-order (DDIM) part and the scale of the higher-order correction."""
        if self.predict_x0:
            x_t = float(c["sigma_t"] / c["sigma_s0"]) * x - float(c["alpha_t"] * c["h_phi_1"]) * m0
            return x_t, c["alpha_t"] * c["B_h"]
        x_t = float(c["alpha_t"] / c["alpha_s0"]) * x - float(c["sigma_t"] * c["h_phi_1"]) * m0
        return x_t, c["sigma_t"] * c["B_h"]

    def multistep_uni_p_bh_update(self, model_output: Any, sample: Any, order: int) -> Any:
        """UniP: predict x at the next noise level from the last ``order`` model outputs."""
        if self.solver_p:
            return self.solver_p.step(model_output, self.timestep_list[-1], sample).prev_sample
        i = self._index
        m0 = self.model_outputs[-1]
        earlier = [i - k for k in range(1, order)]
        c, R, b, rks = self._uni_coefficients(i + 1, i, earlier, order)
        D1s = [(self.model_outputs[-(k + 1)] - m0) / float(rk) for k, rk in enumerate(rks, start=1)]
        if order == 2:
            rhos_p = np.array([0.5])
        elif order > 2:
            rhos_p = np.linalg.solve(R[:-1, :-1], b[:-1])
        else:
            rhos_p = np.array([])
        x_t, scale = self._base_step(sample, m0, c)
        x_t = x_t - float(scale) * _combine(rhos_p, D1s)
        return x_t.astype(sample.dtype, copy=False)

    def multistep_uni_c_bh_update(
        self, this_model_output: Any, last_sample: Any, this_sample: Any, order: int
    ) -> Any:
        """UniC: correct the last step's prediction with the model output at the predicted point."""
        i = self._index
        m0 = self.model_outputs[-1]
        earlier = [i - (k + 1) for k in range(1, order)]
        c, R, b, rks = self._uni_coefficients(i, i - 1, earlier, order)
        D1s = [(self.model_outputs[-(k + 1)] - m0) / float(rk) for k, rk in enumerate(rks, start=1)]
        rhos_c = np.array([0.5]) if order == 1 else np.linalg.solve(R, b)
        x_t, scale = self._base_step(last_sample, m0, c)
        D1_t = this_model_output - m0
        x_t = x_t - float(scale) * (_combine(rhos_c[:-1], D1s) + float(rhos_c[-1]) * D1_t)
        return x_t.astype(last_sample.dtype, copy=False)

    def step(
        self, model_output: Any, timestep: Any, sample: Any, generator: Any = None, return_dict: bool = True
    ) -> SchedulerOutput | tuple:
        self._start_step(timestep)
        config = self.config
        use_corrector = (
            self._index > 0 and self._index - 1 not in self.disable_corrector and self.last_sample is not None
        )
        model_output_convert = self.convert_model_output(model_output, sample=sample)
        if use_corrector:
            sample = self.multistep_uni_c_bh_update(
                model_output_convert, self.last_sample, sample, self.this_order
            )
        self.model_outputs = [*self.model_outputs[1:], model_output_convert]
        self.timestep_list = [*self.timestep_list[1:], timestep]

        this_order = config.solver_order
        if config.lower_order_final:
            this_order = min(this_order, len(self._chosen_timesteps) - self._index)
        self.this_order = min(this_order, self.lower_order_nums + 1)  # warm up from first order
        self.last_sample = sample
        prev_sample = self.multistep_uni_p_bh_update(model_output, sample, self.this_order)
        self.lower_order_nums = min(self.lower_order_nums + 1, config.solver_order)
        self._step_index = self._index + 1
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)
