"""DiT: a class-conditional transformer (``DiTTransformer2DModel``; ``Transformer2DModel`` in the folders saved
before diffusers split it out) denoising AutoencoderKL latents of its own size, guided by the null class."""

from __future__ import annotations

from .base import CLASS_CONDITIONAL, Family

DIT = Family(
    name="dit",
    title="DiT",
    folder_pipelines=("DiTPipeline",),
    required={
        "transformer": ("DiTTransformer2DModel", "Transformer2DModel"),
        "vae": ("AutoencoderKL",),
    },
    tasks={CLASS_CONDITIONAL: "dit:DiTPipeline"},
    default_steps=50,
    fixed_size=True,
    denoiser="transformer",
)
