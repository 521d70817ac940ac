"""``ScoreSdeVePipeline``: predictor-corrector sampling of the variance-exploding SDE (Song et al.,
https://arxiv.org/abs/2011.13456) with ``ScoreSdeVeScheduler``; the UNet2DModel predicts the score and takes the
noise level sigma as its timestep (a float, up to ``sigma_max``). Deprecated in diffusers, still shipped."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


class ScoreSdeVePipeline(UnconditionalPipeline):
    """``pipe(batch_size=1, num_inference_steps=2000, generator=None, output_type="pil")``."""

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        num_inference_steps: int = 2000,
        generator: GeneratorLike = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        first, noise = self.first_noise(batch_size, generator)
        scheduler = self.scheduler
        sample = first * np.float32(scheduler.init_noise_sigma)
        scheduler.set_timesteps(num_inference_steps)
        scheduler.set_sigmas(num_inference_steps)
        sample_mean: Any = sample
        for i, t in enumerate(self.progress_bar(scheduler.timesteps)):
            sigma_t = scheduler.sigmas[i]
            for _ in range(scheduler.config.correct_steps):  # corrector: Langevin steps
                score = self.unet(sample, sigma_t)
                sample = scheduler.step_correct(score, sample, generator=noise).prev_sample
            output = scheduler.step_pred(self.unet(sample, sigma_t), t, sample, generator=noise)  # predictor
            sample, sample_mean = output.prev_sample, output.prev_sample_mean
        return self.images_out(sample_mean, output_type, return_dict)  # the last mean, in [0, 1] already
