"""Latent diffusion (Rombach et al., https://arxiv.org/abs/2112.10752) as diffusers' first pipelines shipped it:
a UNet over the latents of a ``vqvae`` part (a VQModel; LDMTextToImagePipeline's is an AutoencoderKL), exported as
the bundle's ``vae_decoder``. Unconditional models (LDMPipeline: the UNet's own size) and 4x super-resolution
(LDMSuperResolutionPipeline: the low-resolution image is the UNet's other 3 input channels) are two families,
since one has a fixed size and the other takes any size in the bundle's range."""

from __future__ import annotations

from .base import LATENT_UNCONDITIONAL, SUPER_RESOLUTION, TEXT_TO_IMAGE, Family

LDM_PARTS = {"unet": ("UNet2DModel",), "vqvae": ("VQModel",)}

LDM = Family(
    name="ldm",
    title="latent diffusion",
    folder_pipelines=("LDMPipeline",),
    required=LDM_PARTS,
    tasks={LATENT_UNCONDITIONAL: "ldm:LDMPipeline"},
    default_steps=50,
    fixed_size=True,
)

LDM_SUPER_RESOLUTION = Family(
    name="ldm-super-resolution",
    title="latent diffusion super-resolution",
    folder_pipelines=("LDMSuperResolutionPipeline",),
    required=LDM_PARTS,
    tasks={SUPER_RESOLUTION: "ldm_super_resolution:LDMSuperResolutionPipeline"},
    default_steps=100,
)

LDM_TEXT = Family(
    name="ldm-text",
    title="latent diffusion text-to-image",
    folder_pipelines=("LDMTextToImagePipeline",),
    required={
        "vqvae": ("VQModel", "AutoencoderKL"),
        "bert": ("LDMBertModel",),
        "unet": ("UNet2DConditionModel",),
    },
    support=("tokenizer",),
    tasks={TEXT_TO_IMAGE: "ldm_text_to_image:LDMTextToImagePipeline"},
    default_steps=50,
)
