"""LDM3D (Intel's ``StableDiffusionLDM3DPipeline`` folders): SD parts whose VAE decodes 4 channels, RGB and
depth (6 in the older RGB-like depth checkpoints)."""

from __future__ import annotations

from .base import CLIP_SKIP, TEXT_TO_IMAGE, Family
from .sd import SD_PARTS

LDM3D = Family(
    name="ldm3d",
    title="LDM3D (RGB + depth)",
    folder_pipelines=("StableDiffusionLDM3DPipeline",),
    required=SD_PARTS,
    support=("tokenizer",),
    features=frozenset({CLIP_SKIP}),
    tasks={TEXT_TO_IMAGE: "ldm3d:StableDiffusionLDM3DPipeline"},
    default_steps=49,
)
