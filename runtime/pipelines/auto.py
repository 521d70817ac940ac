"""Which pipeline class runs a bundle, from the manifest's ``model_type`` (and its ControlNets)."""

from __future__ import annotations

import importlib

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError

# model_type -> (module, class) in sdrt.runtime
PIPELINE_FOR_MODEL_TYPE: dict[str, tuple[str, str]] = {
    "sd1": ("text_to_image", "StableDiffusionPipeline"),
    "sd2": ("text_to_image", "StableDiffusionPipeline"),
    "sdxl": ("sdxl", "StableDiffusionXLPipeline"),
    "inpaint": ("inpaint", "StableDiffusionInpaintPipeline"),
    "depth": ("depth_to_image", "StableDiffusionDepth2ImgPipeline"),
    "uncond": ("ddpm", "DDPMPipeline"),
}

CONTROLNET_PIPELINES: dict[str, tuple[str, str]] = {
    "sd1": ("controlnet", "StableDiffusionControlNetPipeline"),
    "sd2": ("controlnet", "StableDiffusionControlNetPipeline"),
    "sdxl": ("sdxl_controlnet", "StableDiffusionXLControlNetPipeline"),
}


def pipeline_entry(bundle: Bundle) -> tuple[str, str] | None:
    """(module, class) of the pipeline for the bundle: by model type, the ControlNet pipeline for a bundle
    built with build-engine --controlnet; None for a model type sdrt cannot run."""
    entry = PIPELINE_FOR_MODEL_TYPE.get(bundle.model_type)
    if entry is not None and bundle.manifest.controlnets and bundle.model_type in CONTROLNET_PIPELINES:
        return CONTROLNET_PIPELINES[bundle.model_type]
    return entry


def pipeline_class_for(bundle: Bundle) -> type:
    """The pipeline class for the bundle (a clear error for one sdrt cannot run)."""
    entry = pipeline_entry(bundle)
    if entry is None:
        raise BundleError(
            f"{bundle.path}: model_type {bundle.model_type!r} has no sdrt pipeline (sdrt runs "
            f"{', '.join(PIPELINE_FOR_MODEL_TYPE)}); upgrade sdrt or rebuild the bundle"
        )
    module, name = entry
    return getattr(importlib.import_module(f".{module}", __package__), name)
