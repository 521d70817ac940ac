"""``AddedConditions``: SDXL's micro-conditioning, the UNet's (and its ControlNets') ``text_embeds`` (the
pooled prompt embeddings) and ``time_ids`` (original size, crop, target size) beside the latents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class AddedConditions(Conditioner):
    """``time_ids`` and ``negative_time_ids``: [[orig_h, orig_w, crop_top, crop_left, target_h, target_w]] (a
    refiner's: [[orig_h, orig_w, crop_top, crop_left, aesthetic_score]]); ``blocks``: the rows as diffusers'
    img2img and inpainting pipelines lay them out, every negative row, then every positive one."""

    def __init__(self, time_ids: Any, negative_time_ids: Any, *, blocks: bool = False) -> None:
        self.time_ids, self.negative_time_ids, self.blocks = time_ids, negative_time_ids, blocks

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        """The UNet's ``text_embeds`` and ``time_ids`` per row, and the negative ones the callbacks see."""
        xp, embeds = pipe.xp, call.embeds
        pooled, negative_pooled = embeds.pooled, embeds.negative_pooled
        add_text_embeds, add_time_ids = pooled, self.time_ids
        if call.guidance.enabled:
            add_text_embeds = xp.concatenate([negative_pooled, add_text_embeds])
        if self.blocks:
            add_time_ids = xp.tile(add_time_ids, (embeds.batch, 1))
            if call.guidance.enabled:
                add_time_ids = xp.concatenate(
                    [xp.tile(self.negative_time_ids, (embeds.batch, 1)), add_time_ids]
                )
        else:  # diffusers' text-to-image repeats the [negative, positive] pair: rows alternate
            if call.guidance.enabled:
                add_time_ids = xp.concatenate([self.negative_time_ids, add_time_ids])
            add_time_ids = xp.tile(add_time_ids, (embeds.batch, 1))
        call.state |= {
            "add_text_embeds": add_text_embeds,
            "add_time_ids": add_time_ids,
            "negative_pooled_prompt_embeds": negative_pooled,
            "negative_add_time_ids": self.negative_time_ids,
            "add_neg_time_ids": self.negative_time_ids,
        }
        call.unet_inputs |= {"text_embeds": "add_text_embeds", "time_ids": "add_time_ids"}
