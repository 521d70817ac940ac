"""diffusers' ``StableDiffusionSafetyChecker``: ``clip_input`` (CLIP's image processor output, N x 3 x H x W at
its crop size) -> each image's ``special_scores`` and ``concept_scores`` (cosine similarity to the checker's
concept embeddings less each concept's threshold, the concept scores raised by 0.01 where a special-care
concept scored) and ``has_nsfw_concepts`` (1.0 where a concept score, rounded to 3 decimals, is above 0).

All of it is in the graph: the vision model, the projection, the cosine distances, the thresholds, the
adjustment and the flags, as diffusers' ``forward`` computes them (its rounding to 3 decimals included). The
runtime blacks out the flagged images (``__call__``), as that ``forward`` does.

The processor's settings (``feature_extractor/preprocessor_config.json``, copied into the bundle) fix the
input size (``crop_size``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from sdrt.runtime.bundle.manifest import Shapes
from sdrt.runtime.clip_processor import CLIPImageProcessor
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)
PROCESSOR_PART = "feature_extractor"
# diffusers' StableDiffusionSafetyChecker holds 17 concepts and 3 special-care concepts, whatever its config
CONCEPTS, SPECIAL_CARE = 17, 3
logger = logging.getLogger(__name__)


def processor_of(model: ModelInfo) -> CLIPImageProcessor:
    """The CLIP image processor the model folder's ``feature_extractor`` describes (its defaults without one)."""
    return CLIPImageProcessor(**model.configs.get(PROCESSOR_PART, {}))


def _cosine(a: Any, b: Any) -> Any:
    """diffusers' ``cosine_distance`` (``normalize`` with its 1e-12 floor, then a matrix product), tensor methods."""
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return a @ b.t()


def _above_zero(scores: Any) -> Any:
    """``round(score, 3) > 0`` (round half to even, as NumPy's round in diffusers' forward), per entry."""
    return (scores * 1000.0).round() > 0


class SafetyChecker(Component):
    """``safety_checker(images=..., clip_input=...)`` -> (images with the flagged ones black, [bool per image]),
    as diffusers' ``StableDiffusionSafetyChecker``."""

    name = "safety_checker"
    source = "safety_checker"
    model_classes = ("StableDiffusionSafetyChecker",)
    ort_model_type = "clip"
    flag_outputs: ClassVar[tuple[str, ...]] = ("has_nsfw_concepts",)

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        height, width = processor_of(model).crop_size
        return GraphSpec(
            inputs={"clip_input": TensorSpec("clip_input", F32, ("batch", 3, height, width))},
            outputs={
                "special_scores": TensorSpec("special_scores", F32, ("batch", SPECIAL_CARE)),
                "concept_scores": TensorSpec("concept_scores", F32, ("batch", CONCEPTS)),
                "has_nsfw_concepts": TensorSpec("has_nsfw_concepts", F32, ("batch",)),
            },
            dims={"batch": ranges["batch"]},
            trace={"batch": trace["batch"]},
        )

    @classmethod
    def dim_ranges(cls, shapes: Shapes, scale: int) -> dict[str, Range]:
        """The images of a call: the bundle's batch range (a larger call runs in chunks)."""
        return {"batch": (shapes.batch[0], shapes.batch[1])}

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Normalised pixels: uniform in [-1.8, 2.2], the range CLIP's mean and std give 0..255."""
        rng = np.random.default_rng(seed)
        shape = spec.inputs["clip_input"].concrete(sizes)
        return {"clip_input": rng.uniform(-1.8, 2.2, size=shape).astype(np.float32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        pooled = model.vision_model(inputs["clip_input"])[1]
        image_embeds = model.visual_projection(pooled)
        special = _cosine(image_embeds, model.special_care_embeds) - model.special_care_embeds_weights
        special_care = _above_zero(special).any(dim=1, keepdim=True)
        concept = _cosine(image_embeds, model.concept_embeds) - model.concept_embeds_weights
        concept = concept + special_care.to(concept.dtype) * 0.01
        flags = _above_zero(concept).any(dim=1)
        return {
            "special_scores": special,
            "concept_scores": concept,
            "has_nsfw_concepts": flags.to(concept.dtype),
        }

    def scores(self, clip_input: Any) -> dict[str, Any]:
        """The graph's outputs for ``clip_input`` (float32, N x 3 x H x W), as NumPy / CuPy arrays."""
        return self.run(clip_input=clip_input)

    def __call__(self, images: Any, clip_input: Any) -> tuple[Any, list[bool]]:
        """``images`` (a list, an array or a torch tensor, one entry per image) with each flagged one set to
        zeros (black: diffusers' pipelines leave flagged images un-denormalised), and the flags."""
        raw = self.scores(clip_input)["has_nsfw_concepts"]
        flags = [bool(v > 0.5) for v in (raw.get() if hasattr(raw, "get") else np.asarray(raw))]
        for index, flagged in enumerate(flags):
            if flagged:
                images[index] = images[index] * 0
        if any(flags):
            logger.warning(
                "Potential NSFW content was detected in one or more images. A black image will be returned "
                "instead. Try again with a different prompt and/or seed."
            )
        return images, flags
