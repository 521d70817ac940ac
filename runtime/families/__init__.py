"""The model families, one record each (see ``base.Family``), and the look-ups every layer decides by.

A model type's folder parts, build features and task -> pipeline table are read here, never compared as
strings elsewhere (``tests/test_architecture.py`` checks). A new model type is a new module with its
``Family`` and one row in ``FAMILIES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdrt.runtime.errors import BundleError

from .base import (
    ADAPTER,
    CLASS_CONDITIONAL,
    CLIP_SKIP,
    CONSISTENCY,
    CONTROL,
    CONTROL_IMAGE_TO_IMAGE,
    CONTROL_INPAINT,
    CONTROLNET,
    DEEPCACHE,
    DEPTH,
    DIFFEDIT,
    IMAGE_TO_IMAGE,
    IMAGE_VARIATION,
    INPAINT,
    INSTRUCT_PIX2PIX,
    IP_ADAPTER,
    KARRAS_VE,
    LATENT_UNCONDITIONAL,
    LATENT_UPSCALE,
    LORA,
    PAINT_BY_EXAMPLE,
    PANORAMA,
    REPAINT,
    SAFE,
    SCORE_SDE_VE,
    SEMANTIC,
    SUPER_RESOLUTION,
    T2I_ADAPTER,
    TEXT_TO_IMAGE,
    TEXTUAL_INVERSION,
    UNCLIP_IMAGE_TO_IMAGE,
    UNCONDITIONAL,
    UNCONDITIONAL_DDIM,
    UNCONDITIONAL_PNDM,
    UPSCALE,
    Configs,
    Family,
    class_name,
    resolve,
)

if TYPE_CHECKING:
    from sdrt.runtime.pipelines.base import DiffusionPipeline
from .depth import SD_DEPTH
from .dit import DIT
from .image_conditioned import IMAGE_VARIATION_FAMILY, PAINT_BY_EXAMPLE_FAMILY, UNCLIP_IMG2IMG
from .inpaint import SD_INPAINT
from .instruct_pix2pix import SD_INSTRUCT_PIX2PIX, SDXL_INSTRUCT_PIX2PIX
from .lcm import LCM
from .ldm import LDM, LDM_SUPER_RESOLUTION, LDM_TEXT
from .ldm3d import LDM3D
from .sd import SD1, SD2
from .sdxl import SDXL, SDXL_INPAINT, SDXL_REFINER
from .uncond import UNCOND
from .upscale import SD_LATENT_UPSCALE, SD_UPSCALE

FAMILIES: list[Family] = [
    SD1,
    SD2,
    SDXL,
    SDXL_REFINER,
    SD_INPAINT,
    SDXL_INPAINT,
    SD_DEPTH,
    UNCOND,
    LCM,
    DIT,
    LDM,
    LDM_SUPER_RESOLUTION,
    LDM_TEXT,
    LDM3D,
    SD_UPSCALE,
    SD_LATENT_UPSCALE,
    SD_INSTRUCT_PIX2PIX,
    SDXL_INSTRUCT_PIX2PIX,
    IMAGE_VARIATION_FAMILY,
    UNCLIP_IMG2IMG,
    PAINT_BY_EXAMPLE_FAMILY,
]


def all_families() -> list[Family]:
    """The registered families (read ``FAMILIES`` through this, so that a test's added row is seen)."""
    return list(FAMILIES)


def model_types() -> tuple[str, ...]:
    return tuple(f.name for f in FAMILIES)


def find_family(model_type: str) -> Family | None:
    return next((f for f in FAMILIES if f.name == model_type), None)


def family(model_type: str) -> Family:
    """The family of a manifest's ``model_type`` (a BundleError for one this sdrt does not know)."""
    found = find_family(model_type)
    if found is None:
        raise BundleError(
            f"model_type {model_type!r} is not one this sdrt knows ({', '.join(model_types())}); upgrade sdrt or "
            "rebuild the bundle with build-engine"
        )
    return found


def folder_pipeline_classes() -> tuple[str, ...]:
    """Every diffusers pipeline class whose model folder sdrt reads."""
    return tuple(dict.fromkeys(c for f in FAMILIES for c in f.folder_pipelines))


def families_for_pipeline_class(pipeline_class: str) -> list[Family]:
    """The families whose folders a diffusers ``pipeline_class`` writes (several: told apart by configs)."""
    return [f for f in FAMILIES if pipeline_class in f.folder_pipelines]


def family_for_folder(pipeline_class: str, configs: Configs) -> Family:
    """The family of a folder of ``pipeline_class`` with these part configs."""
    candidates = families_for_pipeline_class(pipeline_class)
    return next(f for f in candidates if f.recognises is None or f.recognises(configs))


def families_with(feature: str) -> list[Family]:
    return [f for f in FAMILIES if f.takes(feature)]


def task_pipeline(bundle_or_type: object, task: str) -> type[DiffusionPipeline] | None:
    """The pipeline class running ``task`` on a bundle (or a ``model_type``); None when its family lacks the
    task."""
    found = family(str(getattr(bundle_or_type, "model_type", bundle_or_type)))
    return found.pipeline(task) if task in found.tasks else None


def model_types_running(cls: type) -> list[str]:
    """The model types whose families list ``cls`` (or a class it derives from) for a task."""
    return [f.name for f in FAMILIES if any(issubclass(cls, p) for p in f.pipelines())]


__all__ = [
    "ADAPTER",
    "CLASS_CONDITIONAL",
    "CLIP_SKIP",
    "DEEPCACHE",
    "CONSISTENCY",
    "CONTROL",
    "CONTROLNET",
    "CONTROL_IMAGE_TO_IMAGE",
    "CONTROL_INPAINT",
    "DEPTH",
    "DIFFEDIT",
    "FAMILIES",
    "IMAGE_TO_IMAGE",
    "IP_ADAPTER",
    "IMAGE_VARIATION",
    "INPAINT",
    "INSTRUCT_PIX2PIX",
    "KARRAS_VE",
    "LATENT_UNCONDITIONAL",
    "LATENT_UPSCALE",
    "LORA",
    "PAINT_BY_EXAMPLE",
    "PANORAMA",
    "REPAINT",
    "SAFE",
    "SCORE_SDE_VE",
    "SUPER_RESOLUTION",
    "T2I_ADAPTER",
    "SEMANTIC",
    "TEXTUAL_INVERSION",
    "TEXT_TO_IMAGE",
    "UNCLIP_IMAGE_TO_IMAGE",
    "UNCONDITIONAL",
    "UNCONDITIONAL_DDIM",
    "UNCONDITIONAL_PNDM",
    "UPSCALE",
    "Family",
    "all_families",
    "class_name",
    "families_for_pipeline_class",
    "families_with",
    "family",
    "family_for_folder",
    "find_family",
    "folder_pipeline_classes",
    "model_types",
    "model_types_running",
    "resolve",
    "task_pipeline",
]
