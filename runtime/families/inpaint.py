"""Stable Diffusion inpainting models: a 9-channel UNet that sees the mask and the masked image's latents."""

from __future__ import annotations

from .base import CLIP_SKIP, DEEPCACHE, INPAINT, LORA, SD_LATENT_RGB, TEXTUAL_INVERSION, Family
from .sd import SD_PARTS

SD_INPAINT = Family(
    name="inpaint",
    title="inpainting",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("StableDiffusionInpaintPipeline",),
    required=SD_PARTS,
    support=("tokenizer",),
    features=frozenset({LORA, TEXTUAL_INVERSION, CLIP_SKIP, DEEPCACHE}),
    tasks={INPAINT: "inpaint:StableDiffusionInpaintPipeline"},
)
