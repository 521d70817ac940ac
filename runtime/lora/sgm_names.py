"""UNet module names of the original (SGM / CompVis) layout, as kohya's SDXL LoRAs spell them
(``lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q``), in diffusers' (``down_blocks_1_attentions_0_
transformer_blocks_0_attn1_to_q``), both with ``_`` for ``.``.

The original layout numbers each level's layers and its down/upsampler in one sequence: ``input_blocks.0``
is ``conv_in``, then per level ``layers_per_block`` layers (``.0`` the resnet, ``.1`` its attention) and the
downsampler; ``output_blocks`` hold ``layers_per_block + 1`` layers per level, the upsampler after the
last one's attention; ``middle_block`` is resnet, attention, resnet. The numbers come from the UNet's own
parameter names (levels, layers, which levels have attention).
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"^(input_blocks|output_blocks)_(\d+)_(\d+)(?:_(.+))?$")
_MIDDLE = re.compile(r"^middle_block_(\d+)_(.+)$")
_TOP = {
    "time_embed_0": "time_embedding_linear_1",
    "time_embed_2": "time_embedding_linear_2",
    "label_emb_0_0": "add_embedding_linear_1",
    "label_emb_0_2": "add_embedding_linear_2",
    "input_blocks_0_0": "conv_in",
    "out_0": "conv_norm_out",
    "out_2": "conv_out",
}
_RESNET = {
    "in_layers_0": "norm1",
    "in_layers_2": "conv1",
    "out_layers_0": "norm2",
    "out_layers_3": "conv2",
    "emb_layers_1": "time_emb_proj",
    "skip_connection": "conv_shortcut",
}


class SgmNames:
    """Translates original-layout UNet module names for a UNet with the given diffusers parameters."""

    def __init__(self, parameters: list[str]) -> None:
        resnets = {p.split(".")[3] for p in parameters if p.startswith("down_blocks.0.resnets.")}
        self.layers = len(resnets)
        self.up_attention = {
            int(p.split(".")[1]) for p in parameters if re.match(r"up_blocks\.\d+\.attentions\.", p)
        }

    def to_diffusers(self, name: str) -> str | None:
        """``name`` (original layout, ``_``-joined) in diffusers' naming, or None if it is not one."""
        if name in _TOP:
            return _TOP[name]
        middle = _MIDDLE.match(name)
        if middle:
            index, rest = int(middle.group(1)), middle.group(2)
            prefix = "mid_block_attentions_0" if index == 1 else f"mid_block_resnets_{index // 2}"
            return _join(prefix, rest)
        block = _BLOCK.match(name)
        if block is None or not self.layers or block.group(4) is None:
            return None
        kind, index, part, rest = block.group(1), int(block.group(2)), int(block.group(3)), block.group(4)
        step = self.layers + 1
        if kind == "input_blocks":
            level, layer = divmod(index - 1, step)
            if layer == self.layers:
                return f"down_blocks_{level}_downsamplers_0_{'conv' if rest == 'op' else rest}"
            return _join(f"down_blocks_{level}_{'resnets' if part == 0 else 'attentions'}_{layer}", rest)
        level, layer = divmod(index, step)
        if part == 0:
            return _join(f"up_blocks_{level}_resnets_{layer}", rest)
        if part == 1 and level in self.up_attention:
            return _join(f"up_blocks_{level}_attentions_{layer}", rest)
        return f"up_blocks_{level}_upsamplers_0_{rest}"


def _join(prefix: str, rest: str) -> str:
    return f"{prefix}_{_RESNET.get(rest, rest) if '_resnets_' in prefix else rest}"
