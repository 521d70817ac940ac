"""sdrt's torch-free runtime: pipelines over engine bundles, with diffusers' names and results.

    from sdrt.runtime import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained("engines/NAME", provider="auto")
    image = pipe("a photo of a cat", generator=1234).images[0]

Names are imported on first use, so ``import sdrt.runtime`` is cheap and loads no engine library.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DiffusionPipeline": "pipelines.base",
    "StableDiffusionPipelineOutput": "pipelines.outputs",
    "ImagePipelineOutput": "pipelines.outputs",
    "StableDiffusionPipeline": "pipelines.text_to_image",
    "StableDiffusionImg2ImgPipeline": "pipelines.image_to_image",
    "StableDiffusionInpaintPipeline": "pipelines.inpaint",
    "StableDiffusionInstructPix2PixPipeline": "pipelines.instruct_pix2pix",
    "StableDiffusionDepth2ImgPipeline": "pipelines.depth_to_image",
    "DPTImageProcessor": "dpt_processor",
    "CLIPImageProcessor": "clip_processor",
    "StableDiffusionImageVariationPipeline": "pipelines.image_variation",
    "StableUnCLIPImg2ImgPipeline": "pipelines.unclip_img2img",
    "PaintByExamplePipeline": "pipelines.paint_by_example",
    "StableDiffusionControlNetPipeline": "pipelines.controlnet",
    "StableDiffusionControlNetImg2ImgPipeline": "pipelines.controlnet_img2img",
    "StableDiffusionControlNetInpaintPipeline": "pipelines.controlnet_inpaint",
    "StableDiffusionPanoramaPipeline": "pipelines.panorama",
    "SemanticStableDiffusionPipeline": "pipelines.semantic",
    "StableDiffusionPipelineSafe": "pipelines.safe",
    "StableDiffusionDiffEditPipeline": "pipelines.diffedit",
    "DiffEditInversionPipelineOutput": "pipelines.outputs",
    "SafetyConfig": "pipelines.safe_guidance",
    "StableDiffusionLDM3DPipeline": "pipelines.ldm3d",
    "StableDiffusionXLPipeline": "pipelines.sdxl",
    "StableDiffusionXLImg2ImgPipeline": "pipelines.sdxl_img2img",
    "StableDiffusionXLInpaintPipeline": "pipelines.sdxl_inpaint",
    "StableDiffusionXLInstructPix2PixPipeline": "pipelines.sdxl_instruct_pix2pix",
    "StableDiffusionXLControlNetPipeline": "pipelines.sdxl_controlnet",
    "StableDiffusionXLControlNetImg2ImgPipeline": "pipelines.sdxl_controlnet_img2img",
    "StableDiffusionXLControlNetInpaintPipeline": "pipelines.sdxl_controlnet_inpaint",
    "StableDiffusionAdapterPipeline": "pipelines.t2i_adapter",
    "StableDiffusionXLAdapterPipeline": "pipelines.sdxl_adapter",
    "LatentConsistencyModelPipeline": "pipelines.latent_consistency",
    "LatentConsistencyModelImg2ImgPipeline": "pipelines.latent_consistency_img2img",
    "DDPMPipeline": "pipelines.ddpm",
    "DDIMPipeline": "pipelines.ddim",
    "PNDMPipeline": "pipelines.pndm",
    "RePaintPipeline": "pipelines.repaint",
    "ScoreSdeVePipeline": "pipelines.score_sde_ve",
    "KarrasVePipeline": "pipelines.karras_ve",
    "ConsistencyModelPipeline": "pipelines.consistency_models",
    "DiTPipeline": "pipelines.dit",
    "LDMPipeline": "pipelines.ldm",
    "LDMSuperResolutionPipeline": "pipelines.ldm_super_resolution",
    "LDMTextToImagePipeline": "pipelines.ldm_text_to_image",
    "StableDiffusionUpscalePipeline": "pipelines.upscale",
    "StableDiffusionLatentUpscalePipeline": "pipelines.latent_upscale",
    "TorchCompatibleGenerator": "random.torch_generator",
    "CLIPTokenizer": "text.tokenizer",
    "make_image_grid": "images",
    "load_image": "images",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = list(_EXPORTS)
