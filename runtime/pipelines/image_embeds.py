"""A conditioning image through CLIP's image processor and the bundle's ``image_encoder`` engine, as diffusers'
image-conditioned pipelines' ``_encode_image`` does: PIL images, arrays and tensors in [0, 1] are processed
(``sdrt.runtime.clip_processor``); a torch tensor of the encoder's input size (N x 3 x S x S) is taken as
``pixel_values`` already processed, as diffusers takes it."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.clip_processor import CONFIG_NAME, CLIPImageProcessor
from sdrt.runtime.components import ImageEncoder
from sdrt.runtime.errors import BundleError, InputError, InputTypeError
from sdrt.runtime.images import rgb_pil_images


def clip_processor(bundle: Bundle, feature_extractor: Any) -> CLIPImageProcessor:
    """sdrt's processor: the one given, a transformers processor's settings, or the bundle's."""
    if isinstance(feature_extractor, CLIPImageProcessor):
        return feature_extractor
    if feature_extractor is None:
        folder = bundle.path / "feature_extractor"
        if not (folder / CONFIG_NAME).is_file():
            raise BundleError(
                f"{bundle.path} has no feature_extractor/{CONFIG_NAME} (the image encoder's processor); rebuild "
                "it with build-engine from a complete model folder"
            )
        return CLIPImageProcessor.from_pretrained(folder)
    if type(feature_extractor).__module__.startswith("transformers") and hasattr(
        feature_extractor, "to_dict"
    ):
        return CLIPImageProcessor(**feature_extractor.to_dict())
    raise InputTypeError(
        "feature_extractor must be sdrt.runtime.clip_processor.CLIPImageProcessor or transformers' "
        f"CLIPImageProcessor, got {type(feature_extractor).__name__}"
    )


def check_encoder(pipeline: str, encoder: Any) -> None:
    """The ``image_encoder`` part: the bundle's engine (None is refused by the engine check)."""
    if encoder is not None and not isinstance(encoder, ImageEncoder):
        raise InputTypeError(
            f"{pipeline}(..., image_encoder={type(encoder).__name__}(...)): pass the bundle's image_encoder engine "
            f"(load the pipeline with {pipeline}.from_pretrained(bundle))"
        )


def encoder_pixels(processor: CLIPImageProcessor, image: Any, size: int, what: str) -> np.ndarray:
    """``pixel_values`` for ``image`` (the argument ``what``), N x 3 x ``size`` x ``size``."""
    if type(image).__module__.split(".")[0] == "torch" and getattr(image, "ndim", 0) == 4:
        pixels = np.asarray(image.detach().cpu().float().numpy(), dtype=np.float32)
    else:
        if isinstance(image, str | bytes) and not image:
            raise InputError(f"`{what}` is empty: pass a PIL image, a file path or an array in [0, 1]")
        pixels = processor(rgb_pil_images(image, what))
    if pixels.shape[1:] != (3, size, size):
        raise InputError(
            f"`{what}` gives pixel_values of shape {tuple(pixels.shape)}, but the image encoder takes N x 3 x "
            f"{size} x {size}: pass images (PIL or arrays in [0, 1]), or a tensor the CLIP processor made"
        )
    return pixels


def encode_images(pipe: Any, image: Any, what: str) -> dict[str, Any]:
    """The image encoder's outputs (``image_embeds``...) for ``image``, in the pipeline's array module."""
    encoder: ImageEncoder = pipe.image_encoder
    pixels = encoder_pixels(pipe.feature_extractor, image, encoder.image_size, what)
    return encoder(pipe.to_xp(pixels))


def image_count(image: Any) -> int:
    """How many images ``image`` holds (a list, a batch tensor or array, else one)."""
    if isinstance(image, list | tuple):
        return len(image)
    shape = getattr(image, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) == 4 else 1
