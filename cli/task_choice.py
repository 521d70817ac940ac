"""Which task ``sdrt generate``'s image flags ask of a bundle, checked against what its family offers.

``--image`` -> image-to-image; ``--image`` and ``--mask`` -> inpainting (an inpainting model's bundle needs
both); a depth-to-image model's bundle -> depth-to-image from ``--image`` (its depth estimator or
``--depth-map``); ``--control-image`` -> the ControlNet tasks (with ``--image``: image-to-image, with
``--mask``: inpainting); ``--adapter-image`` -> the T2I-Adapter task; an upscaler's bundle (x4, x2 latent) -> its
upscale of ``--image``; ``--panorama``, ``--editing-prompt`` and ``--safety-preset`` -> the panorama, SEGA and safe
latent diffusion loops; ``--image`` and ``--source-prompt`` -> DiffEdit; an image variation or Stable unCLIP bundle
-> its pipeline from ``--image``, a Paint-by-Example bundle from ``--image``, ``--mask`` and ``--example-image``. The
family (``sdrt.runtime.families``) names the pipeline of the task.
"""

from __future__ import annotations

import argparse
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdrt.runtime.errors import InputError
from sdrt.runtime.families import (
    CLASS_CONDITIONAL,
    CONTROL,
    CONTROL_IMAGE_TO_IMAGE,
    CONTROL_INPAINT,
    DEPTH,
    DIFFEDIT,
    IMAGE_TO_IMAGE,
    IMAGE_VARIATION,
    INPAINT,
    INSTRUCT_PIX2PIX,
    LATENT_UNCONDITIONAL,
    LATENT_UPSCALE,
    PAINT_BY_EXAMPLE,
    PANORAMA,
    REPAINT,
    SAFE,
    SEMANTIC,
    SUPER_RESOLUTION,
    T2I_ADAPTER,
    TEXT_TO_IMAGE,
    UNCLIP_IMAGE_TO_IMAGE,
    UNCONDITIONAL,
    UPSCALE,
    Family,
    family,
)

if TYPE_CHECKING:
    from sdrt.runtime.pipelines.base import DiffusionPipeline

# task -> (the flags it needs, every flag it takes); tasks not here take no image flags
TASK_FLAGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    IMAGE_TO_IMAGE: (("--image",), ("--image", "--strength")),
    INPAINT: (("--image", "--mask"), ("--image", "--mask", "--strength")),
    DEPTH: (("--image",), ("--image", "--strength", "--depth-map")),
    REPAINT: (("--image", "--mask"), ("--image", "--mask")),
    SUPER_RESOLUTION: (("--image",), ("--image",)),
    UPSCALE: (("--image",), ("--image",)),
    LATENT_UPSCALE: (("--image",), ("--image",)),
    PANORAMA: (("--panorama",), ("--panorama",)),
    SEMANTIC: (("--editing-prompt",), ("--editing-prompt", "--edit-guidance-scale")),
    SAFE: (("--safety-preset",), ("--safety-preset",)),
    DIFFEDIT: (("--image", "--source-prompt"), ("--image", "--source-prompt", "--strength")),
    INSTRUCT_PIX2PIX: (("--image",), ("--image", "--image-guidance")),
    T2I_ADAPTER: (("--adapter-image",), ("--adapter-image", "--adapter-scale")),
    IMAGE_VARIATION: (("--image",), ("--image",)),
    UNCLIP_IMAGE_TO_IMAGE: (("--image",), ("--image",)),
    PAINT_BY_EXAMPLE: (("--image", "--mask", "--example-image"), ("--image", "--mask", "--example-image")),
}
# what a task's flags are, for the error when they are missing
NEEDS = {
    IMAGE_TO_IMAGE: "--image (the picture to start from)",
    INPAINT: "--image (the picture) and --mask (white = repaint)",
    DEPTH: "--image (the picture to start from), and --depth-map where the bundle has no depth estimator",
    REPAINT: "--image (the picture) and --mask (RePaint's convention: black = inpaint, white = keep)",
    SUPER_RESOLUTION: "--image (the low-resolution picture to upscale)",
    UPSCALE: "--image (the low-resolution picture to upscale)",
    LATENT_UPSCALE: "--image (the picture to upscale)",
    SEMANTIC: "--editing-prompt (a concept to steer towards; repeatable)",
    DIFFEDIT: "--image (the picture to edit) and --source-prompt (what it shows now)",
    INSTRUCT_PIX2PIX: "--image (the picture to edit; the prompt is the instruction)",
    IMAGE_VARIATION: "--image (the picture to make variations of)",
    UNCLIP_IMAGE_TO_IMAGE: "--image (the picture whose CLIP embedding guides, beside the optional prompt)",
    PAINT_BY_EXAMPLE: "--image (the picture), --mask (white = repaint) and --example-image (what to paint there)",
}
# what a task starts from, for the error naming what a family runs
STARTS_FROM = {
    TEXT_TO_IMAGE: "text",
    UNCONDITIONAL: "noise",
    IMAGE_TO_IMAGE: "images",
    INPAINT: "masked images",
    DEPTH: "images and depth maps",
    REPAINT: "masked images",
    CLASS_CONDITIONAL: "class labels",
    LATENT_UNCONDITIONAL: "noise",
    SUPER_RESOLUTION: "low-resolution images",
    UPSCALE: "low-resolution images",
    LATENT_UPSCALE: "images",
    PANORAMA: "text",
    SEMANTIC: "text",
    SAFE: "text",
    T2I_ADAPTER: "text and adapter images",
    DIFFEDIT: "images and a source prompt",
    INSTRUCT_PIX2PIX: "images and instructions",
    IMAGE_VARIATION: "images",
    UNCLIP_IMAGE_TO_IMAGE: "images and text",
    PAINT_BY_EXAMPLE: "masked images and example images",
}
CONTROL_TASKS = (CONTROL, CONTROL_IMAGE_TO_IMAGE, CONTROL_INPAINT)
# the tasks whose output size the --image decides (--size does not apply)
SIZED_BY_IMAGE = (IMAGE_TO_IMAGE, DEPTH, UPSCALE, LATENT_UPSCALE)


@dataclass(frozen=True)
class ImageInputs:
    """``--image``, ``--mask``, ``--strength``, ``--depth-map``, ``--control-image`` and ``--control-scale`` as
    given (None or empty: not given)."""

    image: Path | None = None
    mask: Path | None = None
    strength: float | None = None
    depth_map: Path | None = None
    control_images: tuple[Path, ...] = ()
    control_scales: tuple[float, ...] = ()
    panorama: bool = False  # --panorama: MultiDiffusion over --size (default 2048x512)
    editing_prompts: tuple[str, ...] = ()  # --editing-prompt: SEGA
    edit_guidance_scale: float | None = None
    safety_preset: str | None = None  # --safety-preset: safe latent diffusion
    source_prompt: str | None = None  # --source-prompt: DiffEdit
    image_guidance: float | None = None  # --image-guidance: InstructPix2Pix's image_guidance_scale
    adapter_images: tuple[Path, ...] = ()  # --adapter-image: T2I-Adapter conditioning, one per adapter
    adapter_scales: tuple[float, ...] = ()  # --adapter-scale: adapter_conditioning_scale
    example_image: Path | None = None  # --example-image: Paint-by-Example's example
    ip_adapter_image: Path | None = None  # --ip-adapter-image: a bundle built with --ip-adapter
    ip_adapter_scale: float | None = None  # --ip-adapter-scale: set_ip_adapter_scale

    def given(self) -> list[str]:
        flags: dict[str, object] = {"--image": self.image, "--mask": self.mask, "--strength": self.strength}
        flags |= {
            "--depth-map": self.depth_map,
            "--control-image": self.control_images or None,
            "--control-scale": self.control_scales or None,
            "--panorama": self.panorama or None,
            "--editing-prompt": self.editing_prompts or None,
            "--edit-guidance-scale": self.edit_guidance_scale,
            "--safety-preset": self.safety_preset,
            "--source-prompt": self.source_prompt,
            "--image-guidance": self.image_guidance,
            "--adapter-image": self.adapter_images or None,
            "--adapter-scale": self.adapter_scales or None,
            "--example-image": self.example_image,
        }
        return [flag for flag, value in flags.items() if value is not None]


NO_IMAGE_INPUTS = ImageInputs()


def chosen_task(
    model_type: str, inputs: ImageInputs, controlnets: list[str] | None = None, folder_class: str = ""
) -> str:
    """The task of the bundle's family these flags ask for, or a clear error. ``folder_class``: the diffusers
    pipeline class of the folder the bundle was built from (the unconditional family runs that one only)."""
    found = family(model_type)
    if not found.runnable:
        raise InputError(f"sdrt cannot run {found.title} ({model_type}) bundles yet; no pipeline takes them")
    if inputs.control_images or inputs.control_scales:
        return _control_task(found, inputs, controlnets or [])
    given = inputs.given()
    default = found.folder_task(folder_class)
    offered = [t for t in found.tasks if t not in CONTROL_TASKS]
    if found.task_by_folder_class and default is not None:
        offered = [default]
    fitting = [t for t in offered if set(given) <= set(TASK_FLAGS.get(t, ((), ()))[1])]
    ready = [t for t in fitting if set(TASK_FLAGS.get(t, ((), ()))[0]) <= set(given)]
    if ready:  # the task using the most of the flags given
        return max(ready, key=lambda t: len(TASK_FLAGS.get(t, ((), ()))[0]))
    if default in fitting:
        article = "an" if found.title[0].lower() in "aeiou" else "a"
        raise InputError(f"this bundle is {article} {found.title} model: pass {NEEDS[default]}")
    if fitting and fitting[0] in NEEDS and "--image" not in TASK_FLAGS[fitting[0]][0]:
        raise InputError(f"{', '.join(given)} need {NEEDS[fitting[0]]}")
    if fitting:
        raise InputError(f"{', '.join(given)} need --image (the picture to start from)")
    if "--image-guidance" in given:
        raise InputError(
            f"--image-guidance: this bundle is a {model_type!r} model, not an InstructPix2Pix one (build one from a "
            "StableDiffusionInstructPix2PixPipeline folder such as timbrooks/instruct-pix2pix)"
        )
    if "--depth-map" in given:
        raise InputError(
            f"--depth-map: this bundle is a {model_type!r} model, not a depth-to-image one (build one from a "
            "StableDiffusionDepth2ImgPipeline folder such as stabilityai/stable-diffusion-2-depth)"
        )
    starts = " and ".join(dict.fromkeys(STARTS_FROM.get(t, t) for t in offered))
    inpaints = "; this bundle does not inpaint, drop --mask" if "--mask" in given else ""
    raise InputError(
        f"{', '.join(given)}: sdrt runs {found.title} bundles from {starts} only ({found.title} models have no "
        f"sdrt pipeline for these flags yet{inpaints})"
    )


def _control_task(found: Family, inputs: ImageInputs, controlnets: list[str]) -> str:
    if not controlnets:
        raise InputError(
            "--control-image: this bundle has no ControlNet; build it with build-engine MODEL -o BUNDLE "
            "--controlnet CONTROLNET_DIR"
        )
    if inputs.depth_map is not None:
        raise InputError(
            "--depth-map is for depth-to-image bundles; a ControlNet takes a depth map as --control-image"
        )
    count, images, scales = len(controlnets), len(inputs.control_images), len(inputs.control_scales)
    if images != count:
        raise InputError(
            f"{images} --control-image for the bundle's {count} ControlNet{'s' if count > 1 else ''} "
            f"({', '.join(controlnets)}): pass one --control-image per ControlNet, in that order"
        )
    if scales not in (0, 1, count):
        raise InputError(f"{scales} --control-scale for {count} ControlNets: pass one, or one per ControlNet")
    if inputs.image is None and (inputs.mask is not None or inputs.strength is not None):
        raise InputError("--mask and --strength need --image (the picture to start from)")
    task = CONTROL_INPAINT if inputs.mask is not None else CONTROL_IMAGE_TO_IMAGE if inputs.image else CONTROL
    if task not in found.tasks:
        raise InputError(
            f"--image: sdrt runs {found.title} ControlNet bundles from text and control images only (no "
            f"{found.title} ControlNet image-to-image or inpainting pipeline yet)"
        )
    return task


def pipeline_class(
    model_type: str, inputs: ImageInputs, controlnets: list[str] | None = None, folder_class: str = ""
) -> type[DiffusionPipeline]:
    """The pipeline that serves the bundle's model type (and ``controlnets``, its ControlNet components;
    ``folder_class``, its folder's diffusers pipeline class) with these image flags, or a clear error."""
    return family(model_type).pipeline(chosen_task(model_type, inputs, controlnets, folder_class))


def default_steps(model_type: str, folder_class: str = "") -> int:
    """``sdrt generate``'s step count when ``--steps`` is not given: the family's, or (the unconditional family)
    the default ``num_inference_steps`` of the pipeline the folder's class names."""
    found = family(model_type)
    task = found.folder_task(folder_class)
    if found.task_by_folder_class and task is not None:
        parameter = inspect.signature(found.pipeline(task).__call__).parameters.get("num_inference_steps")
        if parameter is not None and isinstance(parameter.default, int):
            return parameter.default
    return found.default_steps


def image_inputs(args: argparse.Namespace) -> ImageInputs:
    """generate's flags that, with the bundle, choose the pipeline."""
    return ImageInputs(
        args.image,
        args.mask,
        args.strength,
        args.depth_map,
        tuple(args.control_image or ()),
        tuple(args.control_scale or ()),
        args.panorama,
        tuple(args.editing_prompt or ()),
        args.edit_guidance_scale,
        args.safety_preset,
        args.source_prompt,
        args.image_guidance,
        tuple(args.adapter_image or ()),
        tuple(args.adapter_scale or ()),
        args.example_image,
        args.ip_adapter_image,
        args.ip_adapter_scale,
    )
