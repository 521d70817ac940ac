"""IP-Adapter at run time (bundles built with ``build-engine --ip-adapter FILE --image-encoder DIR``), as diffusers'
``IPAdapterMixin`` and ``prepare_ip_adapter_image_embeds`` run it: the image through CLIP's image processor and
the ``image_encoder`` engine (a zero image's embeddings, or zeros, for the negative), the embeddings through the
``image_projection`` engine once per call (diffusers projects them in every UNet call: the same tokens), and the
tokens with the per-layer scales (``set_ip_adapter_scale``, graph inputs: no rebuild) into each UNet call.

One adapter, one image per adapter; a call without ``ip_adapter_image(_embeds)`` runs the UNet at scale 0 with
zero tokens, the plain UNet's output (diffusers refuses such a call once an adapter is loaded)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.clip_processor import CLIPImageProcessor
from sdrt.runtime.components import ImageProjection, open_component
from sdrt.runtime.components.ip_adapter import IP_SCALE, IP_TOKENS
from sdrt.runtime.errors import BundleError, InputError

from .arrays import repeat_rows, repeat_to_batch, to_xp
from .conditioners.base import Conditioner
from .ip_adapter_scale import layer_scales

if TYPE_CHECKING:
    from .guided import GuidedCall, TextGuidedPipeline

PROJECTION, ENCODER = "image_projection", "image_encoder"
_OPENING = threading.Lock()
_REBUILD = "rebuild the bundle with build-engine MODEL --ip-adapter FILE --image-encoder DIR"


class IPAdapterParts:
    """The engines and processor of a bundle's IP-Adapter, opened once per loaded UNet."""

    def __init__(self, pipe: Any) -> None:
        bundle = pipe.bundle
        if PROJECTION not in bundle.components:
            raise InputError(f"{bundle.path} has no IP-Adapter; {_REBUILD}")
        projection = open_component(bundle, PROJECTION, pipe.provider)
        if not isinstance(projection, ImageProjection):
            raise BundleError(f"{bundle.path}: its {PROJECTION} is a {type(projection).__name__}; {_REBUILD}")
        self.projection = projection
        given = getattr(pipe, "image_encoder", None)
        self.encoder = given if given is not None else _optional(bundle, ENCODER, pipe.provider)
        processor = bundle.path / "feature_extractor" / "preprocessor_config.json"
        if processor.is_file():
            self.processor = CLIPImageProcessor.from_pretrained(processor.parent)
        elif self.encoder is not None:  # diffusers' default: CLIPImageProcessor(size=S, crop_size=S)
            size = int(self.encoder.record.inputs["pixel_values"].shape[-1])
            self.processor = CLIPImageProcessor(size=size, crop_size=size)

    def encode_image(
        self, image: Any, num_images_per_prompt: int, output_hidden_states: bool
    ) -> tuple[Any, Any]:
        """diffusers' ``encode_image``: (embeddings, negative) of ``image``, each repeated per image; the negative
        is zeros, or for hidden states (Plus) the encoder's on a zero image."""
        if self.encoder is None:
            raise InputError(
                "ip_adapter_image: this bundle has no image_encoder engine; pass ip_adapter_image_embeds, or "
                + _REBUILD
            )
        xp = self.encoder.xp
        pixels = xp.asarray(self.processor(image))
        key = "penultimate_hidden_states" if output_hidden_states else "image_embeds"
        embeds = repeat_rows(xp, self.encoder.run(pixel_values=pixels)[key], num_images_per_prompt)
        if output_hidden_states:
            negative = self.encoder.run(pixel_values=xp.zeros_like(pixels))[key]
            return embeds, repeat_rows(xp, negative, num_images_per_prompt)
        return embeds, xp.zeros_like(embeds)


def _optional(bundle: Any, name: str, provider: str) -> Any:
    return open_component(bundle, name, provider) if name in bundle.components else None


def ip_adapter_parts(pipe: Any) -> IPAdapterParts:
    unet = pipe.unet
    with _OPENING:
        parts = getattr(unet, "ip_adapter_parts", None)
        if parts is None:
            parts = unet.ip_adapter_parts = IPAdapterParts(pipe)
    return parts


def set_ip_adapter_scale(pipe: Any, scale: Any) -> None:
    """diffusers' ``set_ip_adapter_scale``: a number, a list of one (one adapter), or a dict by blocks
    (``{"down": {"block_2": [0.0, 1.0]}, "up": {"block_0": [0.0, 1.0, 0.0]}}``: unnamed blocks 0)."""
    layers = pipe.manifest.unet.ip_adapter_layers
    if not layers or IP_SCALE not in pipe.unet.record.inputs:
        raise InputError(f"set_ip_adapter_scale: {pipe.bundle.path} has no IP-Adapter; {_REBUILD}")
    pipe.unet.ip_adapter_scale = np.asarray(layer_scales(scale, layers), np.float32)


def prepare_ip_adapter_image_embeds(
    pipe: Any, image: Any, image_embeds: Any, num_images_per_prompt: int, guidance: bool
) -> list[Any]:
    """diffusers' ``prepare_ip_adapter_image_embeds``: per adapter [negatives,] embeddings, each
    [num_images_per_prompt, images, ...] (a list of one: sdrt runs one adapter)."""
    parts = ip_adapter_parts(pipe)
    xp = pipe.xp
    if image_embeds is None:
        images = image if isinstance(image, list) else [image]
        if len(images) != 1:
            raise InputError(
                f"`ip_adapter_image` must have same length as the number of IP Adapters. Got {len(images)} images "
                "and 1 IP Adapters."
            )
        single, negative = parts.encode_image(images[0], 1, parts.projection.takes_hidden_states)
        pairs = [(xp.asarray(single)[None], xp.asarray(negative)[None])]
    else:
        pairs = []
        for embeds in image_embeds:
            embeds = to_xp(xp, embeds)
            negative, embeds = (
                (embeds[: len(embeds) // 2], embeds[len(embeds) // 2 :]) if guidance else (None, embeds)
            )
            pairs.append((embeds, negative))
    prepared = []
    for embeds, negative in pairs:
        embeds = xp.concatenate([embeds] * num_images_per_prompt)
        if guidance:
            embeds = xp.concatenate([xp.concatenate([negative] * num_images_per_prompt), embeds])
        prepared.append(embeds)
    return prepared


class IPAdapterImage(Conditioner):
    """The UNet's image tokens for a call's ``ip_adapter_image`` or ``ip_adapter_image_embeds``."""

    def __init__(self, image: Any, image_embeds: Any) -> None:
        self.image, self.image_embeds = image, image_embeds
        self.tokens: Any = None
        self.scale: Any = None

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        guidance = call.guidance.enabled
        embeds = prepare_ip_adapter_image_embeds(
            pipe, self.image, self.image_embeds, call.num_images_per_prompt, guidance
        )
        if len(embeds) != 1 or embeds[0].ndim not in (3, 4) or embeds[0].shape[1] != 1:
            shapes = [tuple(e.shape) for e in embeds]
            raise InputError(
                f"ip_adapter_image_embeds {shapes}: sdrt runs one IP-Adapter with one image, a list of one "
                "[negative and positive rows, 1, ...] array"
            )
        rows = embeds[0][:, 0]
        projection = ip_adapter_parts(pipe).projection
        tokens = projection(rows)
        half = call.embeds.batch  # the UNet batch: [negatives, positives] of prompts x images per prompt
        halves = (tokens[: len(tokens) // 2], tokens[len(tokens) // 2 :]) if guidance else (tokens,)
        self.tokens = pipe.xp.concatenate([repeat_to_batch(pipe.xp, h, half, IP_TOKENS) for h in halves])
        self.scale = pipe.unet.ip_adapter_scale.copy()  # as at the call's start

    def step_inputs(self, state: dict[str, Any], t: Any, model_input: Any) -> dict[str, Any]:
        return {IP_TOKENS: self.tokens, IP_SCALE: self.scale}


def ip_adapter_conditioners(pipe: Any) -> list[Conditioner]:
    """The call's IP-Adapter conditioner, where it passes ``ip_adapter_image`` or ``ip_adapter_image_embeds``."""
    arguments = pipe.call_arguments()
    image, embeds = arguments.get("ip_adapter_image"), arguments.get("ip_adapter_image_embeds")
    if image is None and embeds is None:
        return []
    if IP_TOKENS not in pipe.unet.record.inputs:
        raise BundleError(f"ip_adapter_image: {pipe.bundle.path}'s UNet takes no image tokens; {_REBUILD}")
    return [IPAdapterImage(image, embeds)]
