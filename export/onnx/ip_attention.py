"""diffusers' IP-Adapter attention (IPAdapterAttnProcessor2_0, one image per adapter, no masks) with the matmul
attention of ``matmul_attention``: text attention plus ``scale x attention(image tokens)`` per adapter, the
weights and scales those of the wrapped diffusers processor (``.ip``), which the validation's torch reference runs
as it is."""

from __future__ import annotations

from typing import Any

import torch

from .matmul_attention import _heads_qkv, _matmul_softmax_matmul


def is_ip_adapter_processor(processor: Any) -> bool:
    """diffusers' IP-Adapter processors carry ``to_k_ip`` / ``to_v_ip`` (IPAdapterAttnProcessor, ...2_0)."""
    return hasattr(processor, "to_k_ip") and hasattr(processor, "to_v_ip")


class MatmulIPAdapterAttnProcessor(torch.nn.Module):
    """``ip``'s computation with plain matmuls (its weights stay its own, so ``.to()`` and the state dict see them)."""

    def __init__(self, ip: Any) -> None:
        super().__init__()
        self.ip: Any = ip  # diffusers' IPAdapterAttnProcessor2_0: its to_k_ip / to_v_ip lists and scales

    def forward(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: Any = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        encoder_hidden_states, ip_hidden_states = (
            encoder_hidden_states  # the UNet passes (text, [image tokens])
        )
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size = encoder_hidden_states.shape[0]
        if attention_mask is not None:
            sequence_length = encoder_hidden_states.shape[1]
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query, key, value, head_dim = _heads_qkv(attn, hidden_states, encoder_hidden_states, batch_size)
        hidden_states = _matmul_softmax_matmul(attn, query, key, value, attention_mask)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        for tokens, scale, to_k_ip, to_v_ip in zip(
            ip_hidden_states, self.ip.scale, self.ip.to_k_ip, self.ip.to_v_ip
        ):
            ip_key = to_k_ip(tokens).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
            ip_value = to_v_ip(tokens).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
            image = _matmul_softmax_matmul(attn, query, ip_key, ip_value, None)
            hidden_states = hidden_states + scale * image.transpose(1, 2).reshape(
                batch_size, -1, attn.heads * head_dim
            )

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor
