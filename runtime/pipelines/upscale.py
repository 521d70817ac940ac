"""``StableDiffusionUpscalePipeline``: text-guided 4x super-resolution (stabilityai/stable-diffusion-x4-upscaler).

As diffusers: the low-resolution picture (bicubic-floored to the VAE's 4-pixel grid, in [-1, 1]) is noised to
``noise_level`` by ``low_res_scheduler`` (a DDPM scheduler, the bundle's ``low_res_scheduler/``) and sits beside the
latents (at its own size) as 3 more UNet channels at every step, with the noise level as the UNet's
``class_labels`` (``conditioners/low_res_image.py``); the VAE (scaling factor 0.08333) decodes 4x the input's size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from PIL import Image

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import ImageInput, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call, take_callback
from .checks import integer
from .conditioners.low_res_image import LowResImage
from .guided import TextGuidedPipeline
from .outputs import StableDiffusionPipelineOutput
from .stable_diffusion import StableDiffusionBase

logger = logging.getLogger(__name__)

SCALING_FACTOR = 0.08333  # what diffusers sets on the x4 upscaler's VAE, whatever its config says
MAX_NOISE_LEVEL = 350  # diffusers' default ``max_noise_level``


class StableDiffusionUpscalePipeline(StableDiffusionBase):
    """``StableDiffusionUpscalePipeline(vae, text_encoder, tokenizer, unet, low_res_scheduler, scheduler,
    max_noise_level=350)``; ``pipe(prompt, image=low_res_image, noise_level=20)``: images 4x the input's."""

    parts = (
        "vae",
        "text_encoder",
        "tokenizer",
        "unet",
        "low_res_scheduler",
        "scheduler",
        "safety_checker",
        "feature_extractor",
        "watermarker",
    )

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        low_res_scheduler: Any = None,
        scheduler: Any = None,
        safety_checker: Any = None,
        feature_extractor: Any = None,
        watermarker: Any = None,
        max_noise_level: int | None = None,
    ) -> None:
        """diffusers' constructor. ``low_res_scheduler``: by default the bundle's (a DDPMScheduler);
        ``max_noise_level``: by default the model folder's (model_index.json), else 350; ``safety_checker``,
        ``feature_extractor`` and ``watermarker`` must be None (sdrt runs none)."""
        TextGuidedPipeline.__init__(
            self,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=safety_checker,
            feature_extractor=feature_extractor,
            watermarker=watermarker,
        )
        self.safety_checker = self.feature_extractor = self.watermarker = None
        self.low_res_scheduler = low_res_scheduler or self._bundle_low_res_scheduler()
        self.max_noise_level = int(
            max_noise_level if max_noise_level is not None else self._bundle_max_noise_level()
        )
        if self.vae is not None and self.vae.config.scaling_factor != SCALING_FACTOR:
            logger.warning(
                "the VAE's scaling_factor is %s; the x4 upscaler's is %s, which diffusers sets (and so does sdrt)",
                self.vae.config.scaling_factor,
                SCALING_FACTOR,
            )
            self.vae.config.scaling_factor = SCALING_FACTOR

    def _bundle_low_res_scheduler(self) -> Any:
        from sdrt.schedulers import scheduler_from_config

        return scheduler_from_config(self.bundle.path / "low_res_scheduler")

    def _bundle_max_noise_level(self) -> int:
        settings = self.bundle.path / "pipeline_config.json"
        if not settings.is_file():
            return MAX_NOISE_LEVEL
        return int(json.loads(settings.read_text(encoding="utf-8")).get("max_noise_level", MAX_NOISE_LEVEL))

    def _config_values(self) -> dict[str, Any]:
        return {"max_noise_level": self.max_noise_level}

    def low_resolution(self, image: ImageInput) -> Any:
        """The picture as diffusers' image processor makes it (bicubic), its output size checked."""
        if image is None:
            raise InputError(
                "`image` input cannot be undefined: the upscaler starts from a low-resolution image"
            )
        scale = self.vae_scale_factor
        pixels = preprocess_image(image, scale_factor=scale, resample=Image.Resampling.BICUBIC)
        height, width = (n * scale for n in pixels.shape[2:])
        try:
            self.check_size(height, width)
        except InputError as error:
            raise InputError(
                f"`image` of {pixels.shape[3]}x{pixels.shape[2]} pixels makes a {width}x{height} output: {error}"
            ) from None
        return pixels

    def check_noise_level(self, noise_level: Any) -> int:
        level = integer("noise_level", noise_level, "pass a whole number, e.g. noise_level=20")
        if level > self.max_noise_level:  # diffusers' check; below 0 would index the schedule from its end
            raise InputError(f"`noise_level` has to be <= {self.max_noise_level} but is {level}")
        if level < 0:
            raise InputError(f"`noise_level` has to be >= 0 but is {level}")
        return level

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        num_inference_steps: int = 75,
        guidance_scale: float = 9.0,
        noise_level: int = 20,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
    ) -> StableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL, NumPy HWC/NHWC in [0, 1] (uint8 in 0..255), torch
        CHW/NCHW; ``noise_level``: 0..``max_noise_level``, the noise added to the low-resolution image."""
        take_callback(self._state, callback, callback_steps)
        level = self.check_noise_level(noise_level)
        pixels = self.low_resolution(image)
        size = (pixels.shape[2] * self.vae_scale_factor, pixels.shape[3] * self.vae_scale_factor)
        conditioner = LowResImage(pixels, level, self.low_res_scheduler, latents)
        return self.generate(self.open_call(size, [conditioner]))
