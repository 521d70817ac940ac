"""The CLIP vision encoder of image-conditioned models (image variation, unCLIP, IP-Adapter): ``pixel_values``
(the CLIP processor's output, N x 3 x S x S) -> ``image_embeds`` (N x projection_dim, the projected pooled
state) and ``penultimate_hidden_states`` (N x tokens x hidden_size: ``hidden_states[-2]``, what IP-Adapter
Plus reads).

CLIP's position embeddings fix the input size: the encoder config's ``image_size``, which the processor's
crop (``feature_extractor/preprocessor_config.json``) must give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from sdrt.runtime.errors import BundleError
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)


def input_size(model: ModelInfo, source: str) -> int:
    """The side of the square images the encoder takes (its config's ``image_size``)."""
    config = model.configs[source]
    return int(config.get("image_size", 224))


def token_count(config: Mapping[str, Any]) -> int:
    """Patches plus the class token."""
    return (int(config.get("image_size", 224)) // int(config.get("patch_size", 32))) ** 2 + 1


class ImageEncoder(Component):
    """``image_encoder(pixel_values)`` -> dict with ``image_embeds`` and ``penultimate_hidden_states``, as
    transformers' ``CLIPVisionModelWithProjection`` (``output_hidden_states=True``)."""

    name = "image_encoder"
    source = "image_encoder"
    model_classes: ClassVar[tuple[str, ...]] = ("CLIPVisionModelWithProjection",)
    ort_model_type = "vit"

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        size = input_size(model, cls.source)
        pixels = TensorSpec("pixel_values", F32, ("batch", 3, size, size))
        return GraphSpec(
            inputs={"pixel_values": pixels},
            outputs=cls.output_specs(config),
            dims=dict(ranges),
            trace=dict(trace),
        )

    @classmethod
    def output_specs(cls, config: Mapping[str, Any]) -> dict[str, TensorSpec]:
        tokens, hidden = token_count(config), int(config["hidden_size"])
        return {
            "image_embeds": TensorSpec(
                "image_embeds", F32, ("batch", int(config.get("projection_dim", 512)))
            ),
            "penultimate_hidden_states": TensorSpec(
                "penultimate_hidden_states", F32, ("batch", tokens, hidden)
            ),
        }

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Normalised pixels: about what CLIP's mean and std give for [0, 1] images."""
        rng = np.random.default_rng(seed)
        shape = spec.inputs["pixel_values"].concrete(sizes)
        return {"pixel_values": rng.uniform(-1.8, 2.1, size=shape).astype(np.float32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        out = model(pixel_values=inputs["pixel_values"], output_hidden_states=True)
        return {"image_embeds": out.image_embeds, "penultimate_hidden_states": out.hidden_states[-2]}

    @property
    def image_size(self) -> int:
        """The side of the images the engine takes."""
        side = self.record.inputs["pixel_values"].shape[2]
        if not isinstance(side, int):
            raise BundleError(
                f"{self.name}: its pixel_values have no fixed size ({side!r}); rebuild the bundle"
            )
        return side

    def __call__(self, pixel_values: Any) -> dict[str, Any]:
        """The outputs for normalised ``pixel_values`` (float32, N x 3 x S x S)."""
        return self.run(pixel_values=pixel_values)


class PaintByExampleEncoder(ImageEncoder):
    """Paint-by-Example's ``PaintByExampleImageEncoder`` under the same bundle name: ``pixel_values`` ->
    ``image_embeds`` (N x 1 x proj: CLIP's pooled state through the mapper, norm and projection) and
    ``uncond_embeds`` (its learned ``uncond_vector``, N x 1 x proj: what diffusers guides against)."""

    model_classes: ClassVar[tuple[str, ...]] = ("PaintByExampleImageEncoder",)

    @classmethod
    def output_specs(cls, config: Mapping[str, Any]) -> dict[str, TensorSpec]:
        width = int(config.get("projection_dim", 768))
        return {
            name: TensorSpec(name, F32, ("batch", 1, width)) for name in ("image_embeds", "uncond_embeds")
        }

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        embeds, uncond = model(inputs["pixel_values"], return_uncond_vector=True)
        # the vector per image (expand_as keeps the batch dim dynamic in the trace)
        return {"image_embeds": embeds, "uncond_embeds": uncond.expand_as(embeds)}
