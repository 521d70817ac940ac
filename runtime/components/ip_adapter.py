"""IP-Adapter in the UNet (``build-engine --ip-adapter``): the UNet's extra inputs, ``ip_hidden_states`` (the
projected image tokens, [batch, tokens, cross-attention width]: the ``image_projection`` engine's output, one
image per adapter) and ``ip_adapter_scale`` (one scale per image-attention layer, in the order of the manifest's
``unet.ip_adapter_layers``: a graph input, so ``set_ip_adapter_scale`` needs no rebuild).

On the export side the traced forward hands the tokens to diffusers' IPAdapterAttnProcessor2_0 layers as
``added_cond_kwargs={"image_embeds": [tokens]}`` (the UNet's own projection replaced by an identity) and sets each
layer's ``scale`` to its entry of ``ip_adapter_scale``; diffusers adds ``scale x attention(image tokens)`` to each
layer's output, so a scale of 0 adds exactly nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.tensors import TensorSpec

IP_TOKENS = "ip_hidden_states"
IP_SCALE = "ip_adapter_scale"
F32 = np.dtype(np.float32)


def ip_adapter_specs(option: Mapping[str, Any], width: int) -> dict[str, TensorSpec]:
    """The UNet's IP-Adapter inputs for its build option (``tokens``, ``layers``)."""
    tokens, layers = int(option["tokens"]), int(option["layers"])
    return {
        IP_TOKENS: TensorSpec(IP_TOKENS, F32, ("batch", tokens, width)),
        IP_SCALE: TensorSpec(IP_SCALE, F32, (layers,)),
    }


def set_ip_adapter_scales(model: Any, scales: Any) -> None:
    """Each image-attention layer's scale (diffusers' processor ``scale`` list, one adapter) from ``scales``, in
    ``attn_processors`` order (the export's matmul processors wrap diffusers' as ``.ip``)."""
    processors = [getattr(p, "ip", p) for p in model.attn_processors.values()]
    for index, processor in enumerate(p for p in processors if hasattr(p, "to_k_ip")):
        processor.scale = [scales[index]]


def ip_adapter_feeds(unet: Any, batch: int, tokens: Any, scale: Any) -> dict[str, Any]:
    """The engine's IP-Adapter inputs: the tokens (tiled to the batch) and the scales; without tokens, zeros
    at scale 0 (the plain UNet's output). An engine without them refuses tokens."""
    spec = unet.record.inputs.get(IP_TOKENS)
    if spec is None:
        if tokens is not None:
            raise InputError(
                f"the {unet.name} engine takes no IP-Adapter image tokens; rebuild the bundle with build-engine "
                "MODEL --ip-adapter FILE --image-encoder DIR"
            )
        return {}
    xp = unet.xp
    layers = int(unet.record.inputs[IP_SCALE].shape[0])
    if tokens is None:
        shape = (batch, int(spec.shape[1]), int(spec.shape[2]))
        return {IP_TOKENS: xp.zeros(shape, dtype=xp.float32), IP_SCALE: xp.zeros((layers,), dtype=xp.float32)}
    tokens = xp.asarray(tokens, dtype=xp.float32)
    if (
        tokens.ndim != 3
        or tuple(tokens.shape[1:]) != tuple(spec.shape[1:])
        or tokens.shape[0] not in (1, batch)
    ):
        raise InputError(
            f"ip_hidden_states of shape {tuple(tokens.shape)}: the {unet.name} engine takes [{batch} or 1, "
            f"{spec.shape[1]}, {spec.shape[2]}] (one image per IP-Adapter) for a batch of {batch}"
        )
    if tokens.shape[0] != batch:
        tokens = xp.concatenate([tokens] * batch)
    values = np.broadcast_to(np.asarray(scale, dtype=np.float32).reshape(-1), (layers,))
    return {IP_TOKENS: tokens, IP_SCALE: xp.asarray(np.ascontiguousarray(values))}
