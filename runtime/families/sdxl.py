"""Stable Diffusion XL: two CLIP text encoders (the second with a projection), conditioned on the
penultimate layer; its refiner (the second text encoder only, an aesthetic score in the time ids) and its
inpainting models (9-channel UNets)."""

from __future__ import annotations

from .base import (
    ADAPTER,
    CLIP_SKIP,
    CONTROL,
    CONTROL_IMAGE_TO_IMAGE,
    CONTROL_INPAINT,
    CONTROLNET,
    DEEPCACHE,
    IMAGE_TO_IMAGE,
    INPAINT,
    IP_ADAPTER,
    LORA,
    SDXL_LATENT_RGB,
    T2I_ADAPTER,
    TEXT_TO_IMAGE,
    TEXTUAL_INVERSION,
    Configs,
    Family,
)

SDXL_PARTS = {
    "text_encoder": ("CLIPTextModel",),
    "text_encoder_2": ("CLIPTextModelWithProjection",),
    "unet": ("UNet2DConditionModel",),
    "vae": ("AutoencoderKL",),
}
REFINER_PARTS = {name: classes for name, classes in SDXL_PARTS.items() if name != "text_encoder"}

IMG2IMG = "sdxl_img2img:StableDiffusionXLImg2ImgPipeline"
INPAINTING = "sdxl_inpaint:StableDiffusionXLInpaintPipeline"


def has_first_text_encoder(configs: Configs) -> bool:
    return "text_encoder" in configs


def refiner(configs: Configs) -> bool:
    """A refiner folder: ``text_encoder`` (and ``tokenizer``) None in model_index.json."""
    return "text_encoder" not in configs


SDXL = Family(
    name="sdxl",
    title="SDXL",
    latent_rgb=SDXL_LATENT_RGB,
    folder_pipelines=("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"),
    required=SDXL_PARTS,
    support=("tokenizer", "tokenizer_2"),
    features=frozenset({LORA, TEXTUAL_INVERSION, CONTROLNET, ADAPTER, CLIP_SKIP, DEEPCACHE, IP_ADAPTER}),
    dual_text_encoders=True,
    tasks={
        TEXT_TO_IMAGE: "sdxl:StableDiffusionXLPipeline",
        IMAGE_TO_IMAGE: IMG2IMG,
        INPAINT: INPAINTING,
        CONTROL: "sdxl_controlnet:StableDiffusionXLControlNetPipeline",
        CONTROL_IMAGE_TO_IMAGE: "sdxl_controlnet_img2img:StableDiffusionXLControlNetImg2ImgPipeline",
        CONTROL_INPAINT: "sdxl_controlnet_inpaint:StableDiffusionXLControlNetInpaintPipeline",
        T2I_ADAPTER: "sdxl_adapter:StableDiffusionXLAdapterPipeline",
    },
    recognises=has_first_text_encoder,
)

SDXL_REFINER = Family(
    name="sdxl-refiner",
    title="SDXL refiner",
    latent_rgb=SDXL_LATENT_RGB,
    folder_pipelines=("StableDiffusionXLImg2ImgPipeline",),
    required=REFINER_PARTS,
    support=("tokenizer_2",),
    dual_text_encoders=True,
    tasks={IMAGE_TO_IMAGE: IMG2IMG, INPAINT: INPAINTING},
    recognises=refiner,
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
    tasks={INPAINT: INPAINTING},
)
