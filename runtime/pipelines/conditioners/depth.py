"""``DepthMap``: a depth channel beside the latents at every step (Stable Diffusion 2 depth), as diffusers'
depth-to-image: the depths resized to the latents and normalised to [-1, 1] (``depth_map.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..depth_map import prepare_depth_map
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class DepthMap(Conditioner):
    """``depth``: N x H x W depths (any scale); ``latent_size``: the latents' (height, width)."""

    def __init__(self, depth: Any, latent_size: tuple[int, int]) -> None:
        self.depth, self.latent_size = depth, latent_size

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        call.state["depth_mask"] = prepare_depth_map(
            pipe.xp, self.depth, self.latent_size, call.embeds.batch, call.guidance.enabled
        )
        call.extra_channels += ("depth_mask",)
