"""Tiny IP-Adapter files for the tiny models: a CLIPVisionModelWithProjection folder and a random adapter in the
layout diffusers' ``load_ip_adapter`` reads (``image_proj.proj.*``, ``image_proj.norm.*``, ``ip_adapter.N.to_k_ip``
/ ``to_v_ip`` for N = 1, 3, 5... over the UNet's cross-attention layers, as ``_convert_ip_adapter_attn_to_diffusers``
counts them), saved as ``FOLDER/ip_adapter/ip-adapter.safetensors`` with the encoder in ``FOLDER/ip_adapter/image_encoder`` (h94/IP-Adapter's
layout: ``load_ip_adapter(FOLDER, subfolder="ip_adapter", weight_name=...)`` finds both)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WEIGHT_NAME = "ip-adapter.safetensors"
SUBFOLDER = "ip_adapter"


def make_image_encoder(folder: Path, *, seed: int = 40, projection_dim: int = 24) -> Path:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=projection_dim,
    )
    CLIPVisionModelWithProjection(config).eval().save_pretrained(folder)
    return folder


def make_ip_adapter(model_dir: Path, folder: Path, *, seed: int = 41, cross: int | None = None) -> Path:
    """``folder`` with the encoder and an adapter for the UNet of ``model_dir`` (``cross``: another
    cross-attention width, an adapter made for another model). Returns the adapter file."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    folder = Path(folder)
    encoder = make_image_encoder(folder / SUBFOLDER / "image_encoder")
    embed_dim = json.loads((encoder / "config.json").read_text())["projection_dim"]
    unet = UNet2DConditionModel.from_pretrained(Path(model_dir) / "unet")
    width = cross or unet.config.cross_attention_dim
    channels = list(unet.config.block_out_channels)
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int, std: float = 0.3) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * std

    state = {
        "image_proj.proj.weight": randn(4 * width, embed_dim),
        "image_proj.proj.bias": randn(4 * width, std=0.1),
        "image_proj.norm.weight": 1.0 + randn(width, std=0.1),
        "image_proj.norm.bias": randn(width, std=0.1),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        block = int(name.split(".")[1]) if not name.startswith("mid_block") else -1
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[block]
        else:
            hidden = channels[block]
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = randn(hidden, width)
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = randn(hidden, width)
        key_id += 2
    (folder / SUBFOLDER).mkdir(parents=True, exist_ok=True)
    path = folder / SUBFOLDER / WEIGHT_NAME
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
