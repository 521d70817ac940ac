"""The CLIP text encoders: ``input_ids`` int32 [B, 77] -> ``last_hidden_state`` [B, 77, D] (and, for
SDXL, ``penultimate_hidden_state``; for a projection encoder, the pooled ``text_embeds`` [B, P]; built
with ``--clip-skip K``, ``clip_skip_hidden_state``: what diffusers' ``clip_skip=K`` conditions on; for the latent
upscaler, ``hidden_state_unnormed``: the last layer's output before the final layer norm, diffusers'
``hidden_states[-1]``, and ``pooler_output`` [B, D])."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from sdrt.runtime.bundle.manifest import Shapes
from sdrt.runtime.families import family
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range


class TextEncoder(Component):
    """``text_encoder(input_ids)`` -> dict with ``last_hidden_state`` (and the other outputs it has)."""

    name = "text_encoder"
    source: ClassVar[str] = "text_encoder"
    model_classes: ClassVar[tuple[str, ...]] = ("CLIPTextModel",)
    guided = True
    ort_model_type = "clip"
    build_options = ("clip_skip",)

    @classmethod
    def penultimate(cls, model: ModelInfo) -> bool:
        """SDXL conditions on the penultimate layer's hidden states."""
        return family(model.model_type).dual_text_encoders

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        seq, hidden = int(config["max_position_embeddings"]), int(config["hidden_size"])
        f32 = np.dtype(np.float32)
        outputs = {"last_hidden_state": TensorSpec("last_hidden_state", f32, ("batch", seq, hidden))}
        if cls.penultimate(model):
            outputs["penultimate_hidden_state"] = TensorSpec(
                "penultimate_hidden_state", f32, ("batch", seq, hidden)
            )
        if model.classes[cls.source][1] == "CLIPTextModelWithProjection":
            outputs["text_embeds"] = TensorSpec("text_embeds", f32, ("batch", int(config["projection_dim"])))
        if family(model.model_type).pooled_text:
            outputs["hidden_state_unnormed"] = TensorSpec(
                "hidden_state_unnormed", f32, ("batch", seq, hidden)
            )
            outputs["pooler_output"] = TensorSpec("pooler_output", f32, ("batch", hidden))
        extra = {k: int(config[k]) for k in ("vocab_size", "eos_token_id", "bos_token_id")}
        if options.get("clip_skip"):
            outputs["clip_skip_hidden_state"] = TensorSpec(
                "clip_skip_hidden_state", f32, ("batch", seq, hidden)
            )
            extra["clip_skip"] = int(options["clip_skip"])
        return GraphSpec(
            inputs={"input_ids": TensorSpec("input_ids", np.dtype(np.int32), ("batch", seq))},
            outputs=outputs,
            dims=dict(ranges),
            trace=dict(trace),
            extra=extra,
        )

    @classmethod
    def dim_ranges(cls, shapes: Shapes, scale: int) -> dict[str, Range]:
        # prompt and negative prompt go in one call, or (static builds) one call each
        b0, b1 = shapes.batch
        return {"batch": (b0, b0 if shapes.static else 2 * b1)}

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Token ids: BOS, random tokens, then EOS padding from a random position on."""
        rng = np.random.default_rng(seed)
        batch, length = spec.inputs["input_ids"].concrete(sizes)
        vocab, eos = spec.extra["vocab_size"], spec.extra["eos_token_id"]
        ids = rng.integers(0, max(vocab - 2, 1), size=(batch, length))
        ids[:, 0] = spec.extra["bos_token_id"]
        for row, end in enumerate(rng.integers(2, length, size=batch)):
            ids[row, end:] = eos
        return {"input_ids": ids.astype(np.int32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        penultimate = "penultimate_hidden_state" in spec.outputs
        pooled = "pooler_output" in spec.outputs
        skip = spec.extra.get("clip_skip")
        out = model(
            inputs["input_ids"].long(),
            output_hidden_states=penultimate or pooled or bool(skip),
            return_dict=True,
        )
        results = {"last_hidden_state": out.last_hidden_state}
        if penultimate:
            results["penultimate_hidden_state"] = out.hidden_states[-2]
        if "text_embeds" in spec.outputs:
            results["text_embeds"] = out.text_embeds
        if pooled:
            results["hidden_state_unnormed"] = out.hidden_states[-1]
            results["pooler_output"] = out.pooler_output
        if skip:
            results["clip_skip_hidden_state"] = cls.skipped_layer(model, out.hidden_states, skip, penultimate)
        return results

    @staticmethod
    def skipped_layer(model: Any, hidden_states: Any, skip: int, penultimate: bool) -> Any:
        """diffusers' ``clip_skip``: SDXL takes ``hidden_states[-(skip + 2)]`` as it is (it always counts from
        the penultimate layer); SD 1/2 take ``hidden_states[-(skip + 1)]`` through the final layer norm."""
        if penultimate:
            return hidden_states[-(skip + 2)]
        text_model = getattr(model, "text_model", model)  # transformers 5 flattened CLIPTextModel
        return text_model.final_layer_norm(hidden_states[-(skip + 1)])

    def __call__(self, input_ids: Any) -> dict[str, Any]:
        return self.run(input_ids=np.asarray(input_ids, dtype=np.int32))


class TextEncoder2(TextEncoder):
    """SDXL's second encoder (CLIPTextModelWithProjection): penultimate hidden states and pooled embeds."""

    name = "text_encoder_2"
    source = "text_encoder_2"
    model_classes = ("CLIPTextModelWithProjection",)

    @classmethod
    def penultimate(cls, model: ModelInfo) -> bool:
        return True


class LDMBertEncoder(TextEncoder):
    """LDMTextToImagePipeline's ``bert`` (diffusers' LDMBertModel): ``input_ids`` [B, 77] -> ``last_hidden_state``
    [B, 77, d_model], exported as the bundle's ``text_encoder`` (no attention mask, as diffusers calls it)."""

    source = "bert"
    model_classes = ("LDMBertModel",)
    ort_model_type = "bert"

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        seq, hidden = int(config["max_position_embeddings"]), int(config["d_model"])
        output = TensorSpec("last_hidden_state", np.dtype(np.float32), ("batch", seq, hidden))
        return GraphSpec(
            inputs={"input_ids": TensorSpec("input_ids", np.dtype(np.int32), ("batch", seq))},
            outputs={"last_hidden_state": output},
            dims=dict(ranges),
            trace=dict(trace),
            extra={"vocab_size": int(config["vocab_size"])},
        )

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        shape = spec.inputs["input_ids"].concrete(sizes)
        return {"input_ids": rng.integers(0, spec.extra["vocab_size"], size=shape).astype(np.int32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"last_hidden_state": model(inputs["input_ids"].long(), return_dict=False)[0]}
