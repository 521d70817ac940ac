"""InstructPix2Pix's three-way guidance (arXiv:2211.09800, eq. 3), as diffusers' InstructPix2Pix pipelines
compute it: ``uncond + guidance_scale x (text - image) + image_guidance_scale x (image - uncond)``.

diffusers' guided batch is [text + image, no text + image, no text + no image]; sdrt's shared loop lays it
out as [negative, positive, *concepts] (``guided.py``), so here the rows are [negative + image (diffusers'
"image"), positive + image ("text"), negative + zeros ("uncond")]: the same three predictions, each
row on its own in the UNet.
"""

from __future__ import annotations

from typing import Any

from .guidance import ConceptGuidance, rescale_noise_cfg


class ImageGuidance(ConceptGuidance):
    """The rule over [negative + image, positive + image, negative + no image]; ``negative_embeds``: the
    third row's prompt embeddings (the negative ones again); ``guidance_rescale``: SDXL's rescale."""

    def __init__(self, negative_embeds: Any, image_guidance_scale: float, guidance_rescale: float = 0.0):
        super().__init__(negative_embeds, 1)
        self.image_guidance_scale = image_guidance_scale
        self.guidance_rescale = guidance_rescale

    def combine(self, xp: Any, uncond: Any, text: Any, concepts: Any, guidance_scale: float, i: int) -> Any:
        image, no_image = uncond, concepts[0]  # the rows' meanings (see the module docstring)
        guided = no_image + guidance_scale * (text - image) + self.image_guidance_scale * (image - no_image)
        if self.guidance_rescale > 0.0:
            guided = rescale_noise_cfg(xp, guided, text, self.guidance_rescale)
        return guided
