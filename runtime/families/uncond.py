"""Unconditional pixel-space models: a UNet2DModel denoising noise at its own size (DDPM, DDIM, PNDM, score SDE VE,
Karras VE, consistency-model folders; RePaint inpaints with one). The folder's pipeline class picks the loop."""

from __future__ import annotations

from .base import (
    CONSISTENCY,
    KARRAS_VE,
    REPAINT,
    SCORE_SDE_VE,
    UNCONDITIONAL,
    UNCONDITIONAL_DDIM,
    UNCONDITIONAL_PNDM,
    Family,
)

UNCOND = Family(
    name="uncond",
    title="unconditional",
    folder_pipelines=(
        "DDPMPipeline",
        "DDIMPipeline",
        "PNDMPipeline",
        "RePaintPipeline",
        "ScoreSdeVePipeline",
        "KarrasVePipeline",
        "ConsistencyModelPipeline",
    ),
    required={"unet": ("UNet2DModel",)},
    tasks={
        UNCONDITIONAL: "ddpm:DDPMPipeline",
        UNCONDITIONAL_DDIM: "ddim:DDIMPipeline",
        UNCONDITIONAL_PNDM: "pndm:PNDMPipeline",
        REPAINT: "repaint:RePaintPipeline",
        SCORE_SDE_VE: "score_sde_ve:ScoreSdeVePipeline",
        KARRAS_VE: "karras_ve:KarrasVePipeline",
        CONSISTENCY: "consistency_models:ConsistencyModelPipeline",
    },
    default_steps=1000,
    fixed_size=True,
    task_by_folder_class=True,
)
