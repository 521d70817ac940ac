"""``LDMPipeline``: unconditional latent diffusion (e.g. CompVis/ldm-celebahq-256): the UNet2DModel denoises
VQ-VAE latents of its own size with the bundle's scheduler (DDIM), the VQ-VAE's decoder (quantize, post-quant
convolution, decoder) makes the pixels."""

from __future__ import annotations

import inspect
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from .base import DiffusionPipeline
from .call_state import pipeline_call
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


def eta_options(scheduler: Any, eta: float, noise: Any) -> dict[str, Any]:
    """``eta`` where the scheduler's ``step`` takes it (DDIM), as diffusers' latent diffusion pipelines pass it,
    and the call's noise for the schedulers that draw some."""
    accepted = inspect.signature(scheduler.step).parameters
    options: dict[str, Any] = {"eta": eta} if "eta" in accepted else {}
    return options | ({"generator": noise} if "generator" in accepted else {})


class LDMPipeline(UnconditionalPipeline):
    """``LDMPipeline(vqvae, unet, scheduler)``; ``pipe(batch_size=1, generator=None, eta=0.0,
    num_inference_steps=50, output_type="pil", return_dict=True)``."""

    parts = ("vqvae", "unet", "scheduler")
    vae_part = "vqvae"
    required_components = ("unet", "vae_decoder")
    vqvae: Any

    def __init__(self, vqvae: Any = None, unet: Any = None, scheduler: Any = None) -> None:
        DiffusionPipeline.__init__(self, vqvae=vqvae, unet=unet, scheduler=scheduler)

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        generator: GeneratorLike = None,
        eta: float = 0.0,
        num_inference_steps: int = 50,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """``eta``: DDIM's (0: deterministic); ignored by schedulers without it, as diffusers does."""
        latents, noise = self.first_noise(batch_size, generator)
        scheduler = self.scheduler
        latents = latents * scheduler.init_noise_sigma
        scheduler.set_timesteps(num_inference_steps)
        options = eta_options(scheduler, eta, noise)
        for t in self.progress_bar(scheduler.timesteps):
            noise_pred = self.unet(scheduler.scale_model_input(latents, t), t)
            latents = scheduler.step(noise_pred, t, latents, **options).prev_sample
        image = self.vqvae.decode(latents / self.vqvae.config.scaling_factor)
        return self.images_out(image / 2 + 0.5, output_type, return_dict)
