"""``set_ip_adapter_scale``'s argument -> one scale per image-attention layer (the UNet's ``ip_adapter_scale``
input), as diffusers' ``_maybe_expand_lora_scales`` expands it (``default_scale=0.0``), from the layer names the
manifest records (diffusers' processor names, ``down_blocks.2.attentions.1.transformer_blocks.0.attn2.processor``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sdrt.runtime.errors import InputError, InputTypeError

_BLOCK = re.compile(r"^(down|up)_blocks\.(\d+)\.attentions\.(\d+)\.")


def layer_scales(scale: Any, layers: Sequence[str]) -> list[float]:
    """One float per layer of ``layers``: a number for all, a list of one (one adapter), or a dict by blocks."""
    if isinstance(scale, list):
        if len(scale) != 1:
            raise InputError(f"Cannot assign {len(scale)} scale_configs to 1 IP-Adapter.")
        scale = scale[0]
    if isinstance(scale, Mapping):
        by_prefix = _expand(dict(scale), layers)
        values = [0.0] * len(layers)
        for index, layer in enumerate(layers):
            for prefix, value in by_prefix.items():
                if layer.startswith(prefix):
                    values[index] = value
        return values
    return [_number(scale, "scale")] * len(layers)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputTypeError(f"set_ip_adapter_scale: {what} {value!r} must be a finite number")
    return float(value)


def _blocks(layers: Sequence[str]) -> dict[str, dict[int, int]]:
    """Per direction, the blocks with attention and how many attention layers each has."""
    blocks: dict[str, dict[int, set[int]]] = {"down": {}, "up": {}}
    for layer in layers:
        match = _BLOCK.match(layer)
        if match:
            blocks[match[1]].setdefault(int(match[2]), set()).add(int(match[3]))
    return {d: {b: len(a) for b, a in sorted(found.items())} for d, found in blocks.items()}


def _expand(scales: dict[str, Any], layers: Sequence[str]) -> dict[str, float]:
    """diffusers' expansion: ``{"down": {"block_1": [a, b]}, "mid": m}`` -> ``{"down_blocks.1.attentions.0": a,
    ..., "mid_block.attentions.0": m}``; what it leaves out is 0."""
    unknown = set(scales) - {"down", "mid", "up"}
    if unknown:
        raise InputError(f"set_ip_adapter_scale: unknown keys {sorted(unknown)}; use down, mid and up")
    mid = scales.get("mid", 0.0)
    if isinstance(mid, list):
        if len(mid) != 1:
            raise InputError(f"Expected 1 scales for mid, got {len(mid)}.")
        mid = mid[0]
    expanded = {"mid_block.attentions.0": _number(mid, "mid")}
    for updown, blocks in _blocks(layers).items():
        given = scales.get(updown, 0.0)
        if not isinstance(given, Mapping):
            given = {f"block_{i}": given for i in blocks}
        for name in set(given) - {f"block_{i}" for i in blocks}:
            raise InputError(
                f"Can't set lora scale for layer {updown}.{name}. It either doesn't exist in this unet or it has no "
                "attentions."
            )
        for i, count in blocks.items():
            value = given.get(f"block_{i}", 0.0)
            values = value if isinstance(value, list) else [value] * count
            if len(values) == 1:
                values = values * count
            if len(values) != count:
                raise InputError(f"Expected {count} scales for {updown}.block_{i}, got {len(values)}.")
            for j, v in enumerate(values):
                expanded[f"{updown}_blocks.{i}.attentions.{j}"] = _number(v, f"{updown}.block_{i}")
    return expanded
