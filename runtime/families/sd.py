"""Stable Diffusion 1.x and 2.x: one folder layout, told apart by the UNet (SD 2 projects attention linearly,
with 1024-wide text)."""

from __future__ import annotations

from .base import (
    ADAPTER,
    CLIP_SKIP,
    CONTROL,
    CONTROL_IMAGE_TO_IMAGE,
    CONTROL_INPAINT,
    CONTROLNET,
    DEEPCACHE,
    DIFFEDIT,
    IMAGE_TO_IMAGE,
    INPAINT,
    IP_ADAPTER,
    LORA,
    PANORAMA,
    SAFE,
    SD_LATENT_RGB,
    SEMANTIC,
    T2I_ADAPTER,
    TEXT_TO_IMAGE,
    TEXTUAL_INVERSION,
    Configs,
    Family,
)

SD_PARTS = {"text_encoder": ("CLIPTextModel",), "unet": ("UNet2DConditionModel",), "vae": ("AutoencoderKL",)}
# diffusers' safety checker, exported where the folder has it (or build-engine --safety-checker gives one); the
# CLIP image processor's settings fix its input size
SAFETY_CHECKER = {"safety_checker": ("StableDiffusionSafetyChecker",)}
SAFETY_CHECKER_INPUT = {"safety_checker": ("feature_extractor/preprocessor_config.json",)}
# the folders of diffusers' SD pipelines that load SD 1.x / 2.x weights (their own tasks below)
SD_FOLDERS = (
    "StableDiffusionPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionPanoramaPipeline",
    "SemanticStableDiffusionPipeline",
    "StableDiffusionPipelineSafe",
    "StableDiffusionDiffEditPipeline",
)
SD_TASKS = {
    TEXT_TO_IMAGE: "text_to_image:StableDiffusionPipeline",
    IMAGE_TO_IMAGE: "image_to_image:StableDiffusionImg2ImgPipeline",
    INPAINT: "inpaint:StableDiffusionInpaintPipeline",  # a plain UNet, blended after each step
    CONTROL: "controlnet:StableDiffusionControlNetPipeline",
    CONTROL_IMAGE_TO_IMAGE: "controlnet_img2img:StableDiffusionControlNetImg2ImgPipeline",
    CONTROL_INPAINT: "controlnet_inpaint:StableDiffusionControlNetInpaintPipeline",
    T2I_ADAPTER: "t2i_adapter:StableDiffusionAdapterPipeline",
    PANORAMA: "panorama:StableDiffusionPanoramaPipeline",  # MultiDiffusion
    SEMANTIC: "semantic:SemanticStableDiffusionPipeline",  # SEGA
    SAFE: "safe:StableDiffusionPipelineSafe",  # safe latent diffusion
    DIFFEDIT: "diffedit:StableDiffusionDiffEditPipeline",  # mask, DDIM inversion, masked denoising
}


def is_sd2(configs: Configs) -> bool:
    unet = configs["unet"]
    return bool(unet.get("use_linear_projection")) or unet.get("cross_attention_dim") == 1024


SD1 = Family(
    name="sd1",
    title="SD 1.x",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=SD_FOLDERS,
    required=SD_PARTS,
    optional=SAFETY_CHECKER,
    hashed_with=SAFETY_CHECKER_INPUT,
    support=("tokenizer", "feature_extractor"),
    features=frozenset({LORA, TEXTUAL_INVERSION, CONTROLNET, ADAPTER, CLIP_SKIP, DEEPCACHE, IP_ADAPTER}),
    tasks=SD_TASKS,
    recognises=lambda configs: not is_sd2(configs),
)

SD2 = Family(
    name="sd2",
    title="SD 2.x",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=SD_FOLDERS,
    required=SD_PARTS,
    optional=SAFETY_CHECKER,
    hashed_with=SAFETY_CHECKER_INPUT,
    support=("tokenizer", "feature_extractor"),
    features=frozenset({LORA, TEXTUAL_INVERSION, CONTROLNET, ADAPTER, CLIP_SKIP, DEEPCACHE, IP_ADAPTER}),
    tasks=SD_TASKS,
    recognises=is_sd2,
)
