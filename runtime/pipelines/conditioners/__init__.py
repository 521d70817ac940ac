"""What a text-guided call conditions on besides the prompt, one small class each (``base.Conditioner``):
image latents (img2img), the inpainting mask, ControlNet residuals, a depth map, SDXL's added conditions."""

from .base import Conditioner

__all__ = ["Conditioner"]
