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
    "uncond": ("ddpm", "DDPMPipeline"),
}


def pipeline_class_for(bundle: Bundle) -> type:
    """The pipeline class for the bundle's model type (a clear error for one sdrt cannot run)."""
    model_type = bundle.model_type
    if model_type not in PIPELINE_FOR_MODEL_TYPE:
        raise BundleError(
            f"{bundle.path}: model_type {model_type!r} has no sdrt pipeline (sdrt runs "
            f"{', '.join(PIPELINE_FOR_MODEL_TYPE)}); upgrade sdrt or rebuild the bundle"
        )
    module, name = PIPELINE_FOR_MODEL_TYPE[model_type]
    if bundle.manifest.controlnets and model_type in ("sd1", "sd2"):  # built with build-engine --controlnet
        module, name = "controlnet", "StableDiffusionControlNetPipeline"
    return getattr(importlib.import_module(f".{module}", __package__), name)
