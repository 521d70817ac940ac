"""``StableDiffusionImageVariationPipeline``: new images like a given one (lambdalabs/sd-image-variations), as
diffusers runs it: the image's CLIP embedding is the UNet's one-token ``encoder_hidden_states``, guided against
zeros; no prompt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call, take_callback
from .image_guided import ImageGuidedBase
from .outputs import StableDiffusionPipelineOutput


class StableDiffusionImageVariationPipeline(ImageGuidedBase):
    """``pipe(image, num_inference_steps=50, guidance_scale=7.5)``."""

    @pipeline_call
    def __call__(
        self,
        image: Any = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL images, arrays in [0, 1] (HWC / NHWC), a file path,
        or a torch tensor of CLIP ``pixel_values``."""
        if image is None:
            raise InputError("`image` is required: the image whose variations to make")
        take_callback(self._state, callback, callback_steps)
        default_height, default_width = self.default_size()
        return self.generate(self.open_call((height or default_height, width or default_width)))
