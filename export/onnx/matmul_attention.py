"""Attention exported as plain ``matmul -> softmax -> matmul``.

ONNX Runtime's attention fusion and TensorRT's attention kernels recognise that pattern. diffusers'
default processor calls ``scaled_dot_product_attention``, which the TorchScript exporter writes as a
subgraph the fusion does not recognise; its classic ``AttnProcessor`` computes ``baddbmm`` over a
``torch.empty(B*heads, S, S)`` that tracing bakes into a constant of that size (over 2 GB at 512x512).
"""

from __future__ import annotations

from typing import Any

import torch


class MatmulAttnProcessor:
    """A diffusers attention processor computing ``softmax(q @ k^T * scale) @ v`` with plain matmuls."""

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)

        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)

        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query, key, value, head_dim = _heads_qkv(attn, hidden_states, encoder_hidden_states, batch_size)
        hidden_states = _matmul_softmax_matmul(attn, query, key, value, attention_mask)

        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _heads_qkv(
    attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None, batch_size: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """Q of ``hidden_states``, K and V of ``encoder_hidden_states`` (or of ``hidden_states`` too), per head.

    Returns ``(query, key, value, head_dim)``, each ``[B, heads, tokens, head_dim]``.
    """
    query = attn.to_q(hidden_states)
    if encoder_hidden_states is None:
        encoder_hidden_states = hidden_states
    elif attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    key = attn.to_k(encoder_hidden_states)
    value = attn.to_v(encoder_hidden_states)

    head_dim = key.shape[-1] // attn.heads
    query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return query, key, value, head_dim


def _matmul_softmax_matmul(
    attn: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
) -> torch.Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``, upcast to float where ``attn`` asks for it."""
    if attn.upcast_attention:
        query, key = query.float(), key.float()
    scores = torch.matmul(query, key.transpose(-1, -2)) * attn.scale
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores.float() if attn.upcast_softmax else scores, dim=-1).to(value.dtype)
    return torch.matmul(probs, value)


def install_matmul_attention(model: torch.nn.Module) -> int:
    """Give every diffusers ``Attention`` in ``model`` a :class:`MatmulAttnProcessor`; return how many.

    Transformers models (the CLIP text encoders) are switched to their ``eager`` attention, which is
    already matmul -> softmax -> matmul.
    """
    from diffusers.models.attention_processor import Attention

    from .ip_attention import MatmulIPAdapterAttnProcessor, is_ip_adapter_processor

    count = 0
    for module in list(model.modules()):
        if isinstance(module, Attention):
            processor = module.processor
            if isinstance(processor, MatmulIPAdapterAttnProcessor):
                pass
            elif is_ip_adapter_processor(processor):
                module.set_processor(MatmulIPAdapterAttnProcessor(processor))
            else:
                module.set_processor(MatmulAttnProcessor())
            count += 1
    _set_attention_implementation(model, "eager")
    return count


def restore_default_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Put the libraries' default attention back (SDPA), e.g. for a torch reference run."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from .ip_attention import is_ip_adapter_processor

    for module in list(model.modules()):
        if isinstance(module, Attention):
            ip = getattr(
                module.processor, "ip", module.processor
            )  # IP-Adapter layers keep diffusers' processor
            module.set_processor(ip if is_ip_adapter_processor(ip) else AttnProcessor2_0())
    _set_attention_implementation(model, "sdpa")
    return model


def _set_attention_implementation(model: torch.nn.Module, name: str) -> None:
    """Switch a transformers model's attention (``set_attn_implementation``); other models have none."""
    set_implementation = getattr(model, "set_attn_implementation", None)
    if set_implementation is None:
        return
    try:
        set_implementation(name)
    except ValueError:  # a wrapper declaring no SDPA (diffusers' safety checker): its own models take it
        for child in model.children():
            _set_attention_implementation(child, name)
