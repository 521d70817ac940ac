"""InstructPix2Pix models (SD 1.x and SDXL): an 8-channel UNet that sees the noise latents and the latents of
the image it edits, guided by text and image in a batch of 3 rows per image."""

from __future__ import annotations

from .base import INSTRUCT_PIX2PIX, LORA, SD_LATENT_RGB, SDXL_LATENT_RGB, TEXTUAL_INVERSION, Family
from .sd import SD_PARTS
from .sdxl import SDXL_PARTS

SD_INSTRUCT_PIX2PIX = Family(
    name="instruct-pix2pix",
    title="InstructPix2Pix",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("StableDiffusionInstructPix2PixPipeline",),
    required=SD_PARTS,
    support=("tokenizer",),
    features=frozenset({LORA, TEXTUAL_INVERSION}),
    tasks={INSTRUCT_PIX2PIX: "instruct_pix2pix:StableDiffusionInstructPix2PixPipeline"},
    default_steps=100,
    guidance_rows=3,
)

SDXL_INSTRUCT_PIX2PIX = Family(
    name="sdxl-instruct-pix2pix",
    title="SDXL InstructPix2Pix",
    latent_rgb=SDXL_LATENT_RGB,
    folder_pipelines=("StableDiffusionXLInstructPix2PixPipeline",),
    required=SDXL_PARTS,
    support=("tokenizer", "tokenizer_2"),
    dual_text_encoders=True,
    tasks={INSTRUCT_PIX2PIX: "sdxl_instruct_pix2pix:StableDiffusionXLInstructPix2PixPipeline"},
    default_steps=100,
    guidance_rows=3,
)
