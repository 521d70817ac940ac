"""Latent consistency models: diffusers' ``LatentConsistencyModelPipeline`` folders (an SD 1.x/2.x layout
whose UNet takes the guidance scale as an embedding, ``time_cond_proj_dim``, and ``LCMScheduler``)."""

from __future__ import annotations

from .base import (
    CLIP_SKIP,
    DEEPCACHE,
    IMAGE_TO_IMAGE,
    LORA,
    SD_LATENT_RGB,
    TEXT_TO_IMAGE,
    TEXTUAL_INVERSION,
    Family,
)
from .sd import SD_PARTS

LCM = Family(
    name="lcm",
    title="latent consistency",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("LatentConsistencyModelPipeline", "LatentConsistencyModelImg2ImgPipeline"),
    required=SD_PARTS,
    support=("tokenizer",),
    features=frozenset({LORA, TEXTUAL_INVERSION, CLIP_SKIP, DEEPCACHE}),
    tasks={
        TEXT_TO_IMAGE: "latent_consistency:LatentConsistencyModelPipeline",
        IMAGE_TO_IMAGE: "latent_consistency_img2img:LatentConsistencyModelImg2ImgPipeline",
    },
    default_steps=4,
)
