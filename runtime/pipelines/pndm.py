"""``PNDMPipeline``: unconditional generation with pseudo numerical methods (Liu et al.,
https://arxiv.org/abs/2202.09778) on a UNet2DModel bundle; the bundle's scheduler becomes a PNDMScheduler, as in
diffusers (which keeps this pipeline under ``pipelines/deprecated``)."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.random.noise import GeneratorLike
from sdrt.schedulers.alpha.pndm import PNDMScheduler

from .call_state import pipeline_call
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


class PNDMPipeline(UnconditionalPipeline):
    """``pipe(batch_size=1, num_inference_steps=50, generator=None, output_type="pil")``."""

    def __init__(self, unet: Any = None, scheduler: Any = None) -> None:
        if scheduler is not None and hasattr(scheduler, "config"):
            scheduler = PNDMScheduler.from_config(scheduler.config)
        super().__init__(unet=unet, scheduler=scheduler)

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        num_inference_steps: int = 50,
        generator: GeneratorLike = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        image, _ = self.first_noise(batch_size, generator)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(scheduler.timesteps):
            image = scheduler.step(self.unet(image, t), t, image).prev_sample
        return self.images_out(image / 2 + 0.5, output_type, return_dict)
