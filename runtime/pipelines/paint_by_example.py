"""``PaintByExamplePipeline``: the masked part of an image repainted after an example image (Fantasy-Studio/
Paint-by-Example), as diffusers runs it: the example's ``PaintByExampleImageEncoder`` embedding is the UNet's
one-token ``encoder_hidden_states``, guided against the encoder's learned unconditional vector; the 9-channel
UNet sees the masked image (``conditioners/example_inpaint.py``). The output has the image's size."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import preprocess_image, preprocess_mask
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call, take_callback
from .conditioners.example_inpaint import ExampleInpaint
from .image_embeds import image_count
from .image_guided import ImageGuidedBase
from .outputs import StableDiffusionPipelineOutput


class PaintByExamplePipeline(ImageGuidedBase):
    """``pipe(example_image=..., image=..., mask_image=...)``: white in the mask is repainted."""

    image_argument = "example_image"
    _callback_tensor_inputs: tuple[str, ...] = ("latents", "mask", "masked_image_latents")

    @pipeline_call
    def __call__(
        self,
        example_image: Any = None,
        image: Any = None,
        mask_image: Any = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image`` / ``mask_image``: PIL images (or arrays in [0, 1]) whose
        sides are multiples of 8; the output has their size (``height`` and ``width`` are read from them, as in
        diffusers). ``example_image``: PIL images, arrays in [0, 1], or a torch tensor of CLIP ``pixel_values``.
        ``negative_prompt``: diffusers ignores it; here it must be None."""
        for name, value in (("example_image", example_image), ("image", image), ("mask_image", mask_image)):
            if value is None:
                raise InputError(
                    f"`{name}` is required: Paint-by-Example takes an example, an image and a mask"
                )
        if negative_prompt is not None:
            raise InputError(
                "`negative_prompt`: Paint-by-Example takes no prompt (diffusers ignores it); pass None"
            )
        take_callback(self._state, callback, callback_steps)
        pixels = preprocess_image(image, scale_factor=1)
        mask = preprocess_mask(mask_image, scale_factor=1)
        if pixels.shape[2:] != mask.shape[2:] or pixels.shape[0] != mask.shape[0]:
            raise InputError(
                f"`image` {tuple(pixels.shape)} and `mask_image` {tuple(mask.shape)} must have the same size and count"
            )
        if image_count(example_image) != pixels.shape[0]:
            raise InputError(
                f"`example_image` holds {image_count(example_image)} images and `image` {pixels.shape[0]}: pass one "
                "example per image"
            )
        height, width = pixels.shape[2:]
        conditioner = ExampleInpaint(pixels, 1.0 - mask, latents)
        return self.generate(self.open_call((height, width), [conditioner]))

    def uncond_embeds(self, outputs: Mapping[str, Any], embeds: Any) -> Any:
        """The encoder's learned unconditional vector for every image, as diffusers guides."""
        return self.xp.concatenate([outputs["uncond_embeds"][:1]] * int(embeds.shape[0]))
