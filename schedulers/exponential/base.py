"""The base of the exponential-integrator solvers: DPM-Solver (multistep and singlestep), DEIS and UniPC.

All four step in lambda = log(alpha_t / sigma_t) over a schedule of sigmas taken from the training
betas, leave the model input unscaled, and convert the model output to a data prediction x_0 or a
noise prediction eps before they integrate. What differs is how they combine past outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..math.betas import make_betas
from ..math.sigmas import check_one_sigma_spacing, sigmas_from_alphas_cumprod, training_alphas_cumprod
from ..math.thresholding import threshold_sample
from ..scheduler import SchedulerMixin, check_choice
from . import schedule as ms

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


class ExponentialIntegratorScheduler(SchedulerMixin):
    def _check_sigma_spacing(self) -> None:
        config = self.config
        check_one_sigma_spacing(
            type(self).__name__,
            use_karras_sigmas=config.use_karras_sigmas,
            use_exponential_sigmas=config.use_exponential_sigmas,
            use_beta_sigmas=config.use_beta_sigmas,
        )

    def _init_training_schedule(self) -> None:
        """betas, alphas_cumprod and sigmas of the training schedule, from the config."""
        config, name = self.config, type(self).__name__
        if config.trained_betas is None:
            check_choice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES)
        zero_snr = config.get("rescale_betas_zero_snr", False)
        self.betas = make_betas(name, config, zero_snr=zero_snr)
        self.alphas_cumprod = training_alphas_cumprod(self.betas, zero_snr)
        self.sigmas = sigmas_from_alphas_cumprod(self.alphas_cumprod)
        self.init_noise_sigma = 1.0
        # the training steps until set_timesteps; step() refuses to run on them
        self.timesteps = np.arange(config.num_train_timesteps - 1, -1, -1, dtype=np.float32)
        self.num_inference_steps = None
        self._step_index = None
        self._begin_index = None

    @property
    def sigmas_train(self) -> np.ndarray:
        return sigmas_from_alphas_cumprod(self.alphas_cumprod)

    def _alpha_sigma(self, index: int) -> tuple[np.float32, np.float32]:
        return ms.alpha_sigma(self.sigmas[index], flow=self.config.use_flow_sigmas)

    def _lambdas(self, *indices: int) -> list[tuple[np.float32, np.float32, np.float32]]:
        """(alpha, sigma, lambda) at each schedule index."""
        out = []
        for i in indices:
            alpha, sigma = self._alpha_sigma(i)
            out.append((alpha, sigma, ms.log_snr(alpha, sigma)))
        return out

    def _output_alpha_sigma(self) -> tuple[np.float32, np.float32]:
        """The (alpha, sigma) that turn this step's model output into x_0 or eps.

        A flow-prediction output is read with the schedule's own sigma, as diffusers does.
        """
        alpha, sigma = self._alpha_sigma(self._index)
        if self.config.prediction_type == "flow_prediction":
            sigma = self.sigmas[self._index]
        return alpha, sigma

    def _threshold(self, x0: Any) -> Any:
        config = self.config
        if not config.thresholding:
            return x0
        return threshold_sample(
            x0,
            dynamic_thresholding_ratio=config.dynamic_thresholding_ratio,
            sample_max_value=config.sample_max_value,
        )

    def _data_prediction(self, model_output: Any, sample: Any) -> Any:
        """x_0 from the model output, thresholded when the config asks."""
        alpha, sigma = self._output_alpha_sigma()
        return self._threshold(ms.to_x0(model_output, sample, self.config.prediction_type, alpha, sigma))

    def _noise_prediction(self, model_output: Any, sample: Any) -> Any:
        """eps from the model output; with thresholding, the eps of the thresholded x_0."""
        alpha, sigma = self._output_alpha_sigma()
        epsilon = ms.to_epsilon(model_output, sample, self.config.prediction_type, alpha, sigma)
        if not self.config.thresholding:
            return epsilon
        x0 = self._threshold(ms.x0_from_epsilon(epsilon, sample, alpha, sigma))
        return ms.epsilon_from_x0(x0, sample, alpha, sigma)

    def scale_model_input(self, sample: Any, *args: Any, **kwargs: Any) -> Any:
        return sample

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        """x_t = alpha_t x_0 + sigma_t eps at each sample's timestep."""
        return ms.add_noise(self, original_samples, noise, timesteps)
