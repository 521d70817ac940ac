"""The DPT depth estimator of depth-to-image models: ``pixel_values`` (the DPT processor's output, N x 3 x
H x W at the processor's size) -> ``predicted_depth`` (N x H' x W', relative inverse depth).

The processor's settings (``feature_extractor/preprocessor_config.json``, copied into the bundle) fix the
input size: ``size`` itself, or, with ``keep_aspect_ratio``, the sizes the bundle's image sizes resize to.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from typing import Any

import numpy as np

from sdrt.runtime.bundle.manifest import Shapes
from sdrt.runtime.dpt_processor import DPTImageProcessor
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)
PROCESSOR_PART = "feature_extractor"


def processor_of(model: ModelInfo) -> DPTImageProcessor:
    """The DPT processor the model folder's ``feature_extractor`` describes (its defaults without one)."""
    return DPTImageProcessor(**model.configs.get(PROCESSOR_PART, {}))


def output_scale(config: Mapping[str, Any]) -> float:
    """``predicted_depth``'s size over ``pixel_values``': 1 for hybrid / backbone DPTs, else the first
    reassemble stage's factor per patch, times the last fusion's and the head's upsampling (2 x 2)."""
    if config.get("is_hybrid") or config.get("backbone_config") or config.get("backbone"):
        return 1.0
    factors = config.get("reassemble_factors", [4, 2, 1, 0.5])
    return float(factors[0]) * 4 / int(config.get("patch_size", 16))


class DepthEstimator(Component):
    """``depth_estimator(pixel_values)`` -> ``predicted_depth``, as transformers' ``DPTForDepthEstimation``."""

    name = "depth_estimator"
    source = "depth_estimator"
    model_classes = ("DPTForDepthEstimation",)
    ort_model_type = "vit"

    @classmethod
    def input_ranges(cls, model: ModelInfo, height: Range, width: Range) -> dict[str, Range]:
        """``dpt_height`` / ``dpt_width`` over the images the bundle takes (its height and width ranges)."""
        processor = processor_of(model)
        sizes = [processor.output_size(h, w) for h, w in product(height, width)]
        if processor.do_pad and processor.size_divisor:
            d = int(processor.size_divisor)
            sizes = [(-(-h // d) * d, -(-w // d) * d) for h, w in sizes]
        heights, widths = [s[0] for s in sizes], [s[1] for s in sizes]
        return {"dpt_height": (min(heights), max(heights)), "dpt_width": (min(widths), max(widths))}

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        """``ranges`` / ``trace`` give the bundle's image sizes (``image_height``...); the graph's dims are
        the processor's sizes for them, and ``predicted_depth``'s, scaled."""
        processor, scale = processor_of(model), output_scale(model.configs[cls.source])
        dims = {
            "batch": ranges["batch"],
            **cls.input_ranges(model, ranges["image_height"], ranges["image_width"]),
        }
        height, width = processor.output_size(trace["image_height"], trace["image_width"])
        sizes = {"batch": trace["batch"], "dpt_height": height, "dpt_width": width}
        for dpt, depth in (("dpt_height", "depth_height"), ("dpt_width", "depth_width")):
            lo, hi = dims[dpt]
            dims[depth] = (round(lo * scale), round(hi * scale))
            sizes[depth] = round(sizes[dpt] * scale)
        return GraphSpec(
            inputs={"pixel_values": TensorSpec("pixel_values", F32, ("batch", 3, "dpt_height", "dpt_width"))},
            outputs={
                "predicted_depth": TensorSpec(
                    "predicted_depth", F32, ("batch", "depth_height", "depth_width")
                )
            },
            dims=dims,
            trace=sizes,
        )

    @classmethod
    def dim_ranges(cls, shapes: Shapes, scale: int) -> dict[str, Range]:
        """The prompt batch and the bundle's image sizes, which ``graph`` turns into the processor's sizes."""
        return {
            "batch": (shapes.batch[0], shapes.batch[1]),
            "image_height": shapes.height,
            "image_width": shapes.width,
        }

    @classmethod
    def trace_sizes(cls, shapes: Shapes, scale: int, ranges: Mapping[str, Range]) -> dict[str, int]:
        batch = ranges["batch"]
        return {
            "batch": batch[0] if shapes.static else min(max(2, batch[0]), batch[1]),
            "image_height": shapes.default[0],
            "image_width": shapes.default[1],
        }

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Normalised pixels: uniform in [-1, 1]."""
        rng = np.random.default_rng(seed)
        shape = spec.inputs["pixel_values"].concrete(sizes)
        return {"pixel_values": rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"predicted_depth": model(pixel_values=inputs["pixel_values"]).predicted_depth}

    def __call__(self, pixel_values: Any) -> Any:
        """``predicted_depth`` for normalised ``pixel_values`` (float32, N x 3 x H x W)."""
        return self.run(pixel_values=pixel_values)["predicted_depth"]
