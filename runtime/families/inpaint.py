"""Stable Diffusion inpainting models: a 9-channel UNet that sees the mask and the masked image's latents."""

from __future__ import annotations

from .base import CLIP_SKIP, DEEPCACHE, INPAINT, LORA, SD_LATENT_RGB, TEXTUAL_INVERSION, Family
from .sd import SAFETY_CHECKER, SAFETY_CHECKER_INPUT, SD_PARTS

SD_INPAINT = Family(
    name="inpaint",
    title="inpainting",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("StableDiffusionInpaintPipeline",),
    required=SD_PARTS,
    optional=SAFETY_CHECKER,
    hashed_with=SAFETY_CHECKER_INPUT,
    support=("tokenizer", "feature_extractor"),
    features=frozenset({LORA, TEXTUAL_INVERSION, CLIP_SKIP, DEEPCACHE}),
    tasks={INPAINT: "inpaint:StableDiffusionInpaintPipeline"},
)
