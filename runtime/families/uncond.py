"""Unconditional pixel-space models (DDPM, DDIM folders): a UNet2DModel denoising noise at its own size."""

from __future__ import annotations

from .base import UNCONDITIONAL, Family

UNCOND = Family(
    name="uncond",
    title="unconditional",
    folder_pipelines=("DDPMPipeline", "DDIMPipeline"),
    required={"unet": ("UNet2DModel",)},
    tasks={UNCONDITIONAL: "ddpm:DDPMPipeline"},
    default_steps=1000,
    fixed_size=True,
)
