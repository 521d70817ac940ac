"""``KarrasVePipeline``: the stochastic sampler of Karras et al. (https://arxiv.org/abs/2206.00364, Algorithm 2)
with ``KarrasVeScheduler`` on a UNet2DModel bundle, as diffusers' deprecated pipeline runs it: the model sees
(x + 1) / 2 at sigma / 2 and its output is scaled by sigma / 2 (the paper's eq. 213)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


class KarrasVePipeline(UnconditionalPipeline):
    """``pipe(batch_size=1, num_inference_steps=50, generator=None, output_type="pil")``."""

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        num_inference_steps: int = 50,
        generator: GeneratorLike = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        first, noise = self.first_noise(batch_size, generator)
        scheduler = self.scheduler
        sample = first * np.float32(scheduler.init_noise_sigma)
        scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(scheduler.timesteps):
            sigma = scheduler.schedule[t]
            sigma_prev = scheduler.schedule[t - 1] if t > 0 else 0
            # churn: raise the noise level to sigma_hat, then an Euler step down to sigma_prev
            sample_hat, sigma_hat = scheduler.add_noise_to_input(sample, sigma, generator=noise)
            step = scheduler.step(self._denoiser(sample_hat, sigma_hat), sigma_hat, sigma_prev, sample_hat)
            if sigma_prev != 0:  # Heun's second-order correction
                model_output = self._denoiser(step.prev_sample, sigma_prev)
                step = scheduler.step_correct(
                    model_output, sigma_hat, sigma_prev, sample_hat, step.prev_sample, step.derivative
                )
            sample = step.prev_sample
        return self.images_out(sample / 2 + 0.5, output_type, return_dict)

    def _denoiser(self, sample: Any, sigma: Any) -> Any:
        half = np.float32(sigma) / np.float32(2)
        return half * self.unet((sample + 1) / 2, half)
