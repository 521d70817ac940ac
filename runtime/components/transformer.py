"""DiT's denoiser: ``sample`` (latents), ``timestep``, ``class_labels`` (int64 ImageNet ids; the null class for
guidance's unconditional half) -> ``noise_pred``, the model output (epsilon, and the learned variance where the
model learns sigma: twice the latent channels)."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

from sdrt.runtime.bundle.manifest import Manifest
from sdrt.runtime.bundle.records import ComponentRecord
from sdrt.runtime.engines.base import Engine
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)


class DiTTransformer(Component):
    """``transformer(sample, timestep, class_labels)`` -> the model output, as diffusers' ``.sample``."""

    name = "transformer"
    source = "transformer"
    model_classes = ("DiTTransformer2DModel", "Transformer2DModel")
    spatial = "latent"
    guided = True
    ort_model_type = "unet"

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        size = int(config["sample_size"])  # fixed: the position embedding is traced at the model's size
        latent = ("batch", int(config["in_channels"]), size, size)
        out_channels = int(config.get("out_channels") or config["in_channels"])
        inputs = {
            "sample": TensorSpec("sample", F32, latent),
            "timestep": TensorSpec("timestep", F32, ("batch",)),
            "class_labels": TensorSpec("class_labels", np.dtype(np.int64), ("batch",)),
        }
        output = TensorSpec("noise_pred", F32, ("batch", out_channels, size, size))
        classes = int(config.get("num_embeds_ada_norm") or 1000)
        return GraphSpec(
            inputs=inputs,
            outputs={"noise_pred": output},
            dims={"batch": ranges["batch"]},
            trace={"batch": trace["batch"]},
            extra={"classes": classes},
        )

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Timesteps in 0..999, class ids up to the null class, noise latents."""
        rng = np.random.default_rng(seed)
        return {
            "sample": rng.standard_normal(spec.inputs["sample"].concrete(sizes)).astype(np.float32),
            "timestep": rng.uniform(0.0, 999.0, spec.inputs["timestep"].concrete(sizes)).astype(np.float32),
            "class_labels": rng.integers(
                0, spec.extra["classes"] + 1, spec.inputs["class_labels"].concrete(sizes)
            ),
        }

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        output = model(
            inputs["sample"],
            timestep=inputs["timestep"],
            class_labels=inputs["class_labels"],
            return_dict=False,
        )[0]
        return {"noise_pred": output}

    def __init__(self, engine: Engine, record: ComponentRecord, manifest: Manifest) -> None:
        super().__init__(engine, record, manifest)
        info = manifest.unet
        self.config = SimpleNamespace(
            in_channels=info.in_channels, out_channels=info.out_channels, sample_size=info.sample_size
        )

    def __call__(self, sample: Any, timestep: Any, class_labels: Any) -> Any:
        sample = self.xp.asarray(sample)
        batch = sample.shape[0]
        t = np.asarray(timestep.get() if hasattr(timestep, "get") else timestep, dtype=np.float32).reshape(-1)
        if t.size == 1:
            t = np.full((batch,), t[0], dtype=np.float32)
        labels = np.asarray(
            class_labels.get() if hasattr(class_labels, "get") else class_labels, dtype=np.int64
        )
        return self.run(sample=sample, timestep=self.xp.asarray(t), class_labels=self.xp.asarray(labels))[
            "noise_pred"
        ]
