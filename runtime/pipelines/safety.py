"""The safety checker as diffusers' SD pipelines run it (``run_safety_checker``): the decoded images as 8-bit
pictures through CLIP's image processor (the ``feature_extractor``), the bundle's ``safety_checker`` engine on
them, each flagged image black (diffusers zeroes it and skips its denormalisation), and the flags as
``nsfw_content_detected``. Running on the images of the call's ``output_type`` gives diffusers' pixels: the
processor reads what diffusers' ``postprocess(image, "pil")`` gives, the same 8-bit rounding of the same
denormalised pixels.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.clip_processor import CONFIG_NAME, CLIPImageProcessor
from sdrt.runtime.components import SafetyChecker
from sdrt.runtime.errors import BundleError, InputTypeError

logger = logging.getLogger(__name__)

DISABLED_WARNING = (
    "You have disabled the safety checker for %s by passing `safety_checker=None`. Ensure that you abide to the "
    "conditions of the Stable Diffusion license and do not expose unfiltered results in services or applications "
    "open to the public. Both the diffusers team and Hugging Face strongly recommend to keep the safety filter "
    "enabled in all public facing circumstances, disabling it only for use-cases that involve analyzing network "
    "behavior or auditing its results. For more information, please have a look at "
    "https://github.com/huggingface/diffusers/pull/254 ."
)


def accept_safety_checker(pipeline: str, checker: Any) -> SafetyChecker | None:
    """The bundle's ``safety_checker`` engine, or None; a torch module is refused with the build that exports it."""
    if checker is None or isinstance(checker, SafetyChecker):
        return checker
    raise InputTypeError(
        f"{pipeline}(..., safety_checker={type(checker).__name__}(...)): sdrt runs the safety checker as an engine; "
        "build the bundle with build-engine MODEL -o BUNDLE --safety-checker DIR (or from a model folder with "
        "safety_checker/ and feature_extractor/) and load it with from_pretrained"
    )


def accept_feature_extractor(
    pipeline: str, bundle: Bundle, checker: Any, processor: Any
) -> CLIPImageProcessor | None:
    """sdrt's :class:`CLIPImageProcessor` (transformers' is read by its settings); by default, with a safety
    checker, the one the bundle holds (``feature_extractor/preprocessor_config.json``)."""
    if isinstance(processor, CLIPImageProcessor):
        return processor
    if processor is None:
        folder = bundle.path / "feature_extractor"
        if checker is None:
            return None
        if not (folder / CONFIG_NAME).is_file():
            raise BundleError(
                f"{pipeline}: the safety checker needs CLIP's image processor settings, which {folder} lacks; "
                "rebuild the bundle with build-engine (it copies them) or pass feature_extractor="
            )
        return CLIPImageProcessor.from_pretrained(folder)
    if type(processor).__module__.startswith("transformers") and hasattr(processor, "to_dict"):
        return CLIPImageProcessor(**processor.to_dict())
    raise InputTypeError(
        f"{pipeline}(..., feature_extractor={type(processor).__name__}(...)): pass sdrt.runtime.CLIPImageProcessor "
        "or transformers' CLIPImageProcessor (its settings are read)"
    )


def warn_if_disabled(pipeline: str, bundle: Bundle, checker: Any, requires_safety_checker: bool) -> None:
    """diffusers' warning for a checker turned off, where the bundle has one to turn off."""
    if checker is None and requires_safety_checker and "safety_checker" in bundle.components:
        logger.warning(DISABLED_WARNING, pipeline)


def run_safety_checker(
    checker: SafetyChecker | None, processor: CLIPImageProcessor | None, images: Any, output_type: str
) -> tuple[Any, list[bool] | None]:
    """(``images`` with the flagged ones black, the flags), or (``images``, None) without a checker or for
    latents. ``images``: a call's output, PIL images, an NHWC array in [0, 1] or an NCHW torch tensor."""
    if checker is None or processor is None or output_type == "latent":
        return images, None
    if output_type == "pil":
        pictures = list(images)
    elif output_type == "pt":
        pictures = list(images.detach().cpu().float().numpy().transpose(0, 2, 3, 1))  # its own methods
    else:
        pictures = list(np.asarray(images))
    flags = checker.scores(processor(pictures))["has_nsfw_concepts"]
    flagged = [bool(v > 0.5) for v in (flags.get() if hasattr(flags, "get") else np.asarray(flags))]
    if output_type == "pil":
        images = [Image.new(i.mode, i.size) if f else i for i, f in zip(images, flagged)]
    else:
        for index in (i for i, f in enumerate(flagged) if f):
            images[index] = images[index] * 0
    if any(flagged):
        logger.warning(
            "Potential NSFW content was detected in one or more images. A black image will be returned instead."
            " Try again with a different prompt and/or seed."
        )
    return images, flagged
