"""``DDIMPipeline``: unconditional generation with DDIM's sampler (Song et al., https://arxiv.org/abs/2010.02502)
on a UNet2DModel bundle; the bundle's scheduler is converted to a DDIMScheduler, as diffusers does."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.random.noise import GeneratorLike
from sdrt.schedulers.alpha.ddim import DDIMScheduler

from .call_state import pipeline_call
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


class DDIMPipeline(UnconditionalPipeline):
    """``pipe(batch_size=1, generator=None, eta=0.0, num_inference_steps=50, use_clipped_model_output=None,
    output_type="pil")``."""

    def __init__(self, unet: Any = None, scheduler: Any = None) -> None:
        if scheduler is not None and hasattr(scheduler, "config"):
            scheduler = DDIMScheduler.from_config(scheduler.config)  # any scheduler's betas, DDIM's steps
        super().__init__(unet=unet, scheduler=scheduler)

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        generator: GeneratorLike = None,
        eta: float = 0.0,
        num_inference_steps: int = 50,
        use_clipped_model_output: bool | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """``eta``: 0 is DDIM, 1 DDPM; ``use_clipped_model_output``: see ``DDIMScheduler.step``."""
        image, noise = self.first_noise(batch_size, generator)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(scheduler.timesteps):
            model_output = self.unet(image, t)
            image = scheduler.step(
                model_output,
                t,
                image,
                eta=eta,
                use_clipped_model_output=bool(use_clipped_model_output),
                generator=noise,
            ).prev_sample
        return self.images_out(image / 2 + 0.5, output_type, return_dict)
