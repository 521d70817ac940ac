"""Stable Diffusion's upscalers: the x4 upscaler (stabilityai/stable-diffusion-x4-upscaler: a 7-channel UNet over the
latents and the noised low-resolution pixels, the noise level as its class label, a VAE of scale factor 4) and the
x2 latent upscaler (stabilityai/sd-x2-latent-upscaler: a K-diffusion UNet over 2x latents, conditioned on the
text encoder's pooled output and unnormalised last hidden states). One family each: their parts and loops differ."""

from __future__ import annotations

from .base import CLIP_SKIP, LATENT_UPSCALE, UPSCALE, Family
from .sd import SD_PARTS

SD_UPSCALE = Family(
    name="sd-upscale",
    title="x4 upscaler",
    folder_pipelines=("StableDiffusionUpscalePipeline",),
    required=SD_PARTS,
    support=("tokenizer", "low_res_scheduler"),
    features=frozenset({CLIP_SKIP}),
    tasks={UPSCALE: "upscale:StableDiffusionUpscalePipeline"},
    default_steps=75,
)

SD_LATENT_UPSCALE = Family(
    name="sd-latent-upscale",
    title="x2 latent upscaler",
    folder_pipelines=("StableDiffusionLatentUpscalePipeline",),
    required=SD_PARTS,
    support=("tokenizer",),
    tasks={LATENT_UPSCALE: "latent_upscale:StableDiffusionLatentUpscalePipeline"},
    default_steps=75,
    pooled_text=True,
)
