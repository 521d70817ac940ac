"""Stable Diffusion XL: two CLIP text encoders (the second with a projection), conditioned on the
penultimate layer; its inpainting folders export but have no sdrt pipeline yet, so the build refuses them."""

from __future__ import annotations

from .base import (
    CLIP_SKIP,
    CONTROL,
    CONTROLNET,
    DEEPCACHE,
    LORA,
    SDXL_LATENT_RGB,
    TEXT_TO_IMAGE,
    TEXTUAL_INVERSION,
    Family,
)

SDXL_PARTS = {
    "text_encoder": ("CLIPTextModel",),
    "text_encoder_2": ("CLIPTextModelWithProjection",),
    "unet": ("UNet2DConditionModel",),
    "vae": ("AutoencoderKL",),
}

SDXL = Family(
    name="sdxl",
    title="SDXL",
    latent_rgb=SDXL_LATENT_RGB,
    folder_pipelines=("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"),
    required=SDXL_PARTS,
    support=("tokenizer", "tokenizer_2"),
    features=frozenset({LORA, TEXTUAL_INVERSION, CONTROLNET, CLIP_SKIP, DEEPCACHE}),
    dual_text_encoders=True,
    tasks={
        TEXT_TO_IMAGE: "sdxl:StableDiffusionXLPipeline",
        CONTROL: "sdxl_controlnet:StableDiffusionXLControlNetPipeline",
    },
)

SDXL_INPAINT = Family(
    name="sdxl-inpaint",
    title="SDXL inpainting",
    latent_rgb=SDXL_LATENT_RGB,
    folder_pipelines=("StableDiffusionXLInpaintPipeline",),
    required=SDXL_PARTS,
    support=("tokenizer", "tokenizer_2"),
    features=frozenset({CLIP_SKIP}),
    dual_text_encoders=True,
)
