"""The IP-Adapter's image projection (``build-engine --ip-adapter``): ``image_embeds`` (CLIP's pooled image
embeddings [batch, D], or for IP-Adapter Plus the encoder's penultimate hidden states [batch, sequence, D]) ->
``image_prompt_embeds`` [batch, tokens, cross-attention width], the tokens the UNet's image attention reads
(diffusers' ``ImageProjection`` / ``IPAdapterPlusImageProjection``, the UNet's ``encoder_hid_proj`` layer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)


class ImageProjection(Component):
    """``image_projection(image_embeds)`` -> the image tokens, as diffusers' ``unet.encoder_hid_proj`` layer."""

    name = "image_projection"
    source = "image_projection"
    model_classes = ("ImageProjection", "IPAdapterPlusImageProjection")
    guided = True  # [negative, positive] image embeddings in one batch

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        width = int(config["image_embed_dim"])
        sequence = config.get("sequence_length")
        shape: tuple[Any, ...] = ("batch", width) if sequence is None else ("batch", int(sequence), width)
        output = ("batch", int(config["num_tokens"]), int(config["cross_attention_dim"]))
        return GraphSpec(
            inputs={"image_embeds": TensorSpec("image_embeds", F32, shape)},
            outputs={"image_prompt_embeds": TensorSpec("image_prompt_embeds", F32, output)},
            dims=dict(ranges),
            trace=dict(trace),
        )

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"image_prompt_embeds": model(inputs["image_embeds"])}

    @property
    def takes_hidden_states(self) -> bool:
        """Plus: the encoder's penultimate hidden states, as diffusers' ``encode_image(output_hidden_states=True)``."""
        return len(self.record.inputs["image_embeds"].shape) == 3

    def __call__(self, image_embeds: Any) -> Any:
        return self.run(image_embeds=image_embeds)["image_prompt_embeds"]
