"""``StableDiffusionDepth2ImgPipeline``: image-to-image conditioned on depth (Stable Diffusion 2 depth).

As diffusers: the image's latents are noised to the first timestep kept by ``strength`` (img2img), and every
UNet step also sees a depth channel: the DPT depth estimator's ``predicted_depth`` for the image (its
processor's steps in NumPy/Pillow: ``sdrt.runtime.dpt_processor``), or the caller's ``depth_map``, resized
to the latents and normalised to [-1, 1] (``depth_map.py``). A bundle without a depth estimator runs on
given depth maps only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.dpt_processor import CONFIG_NAME, DPTImageProcessor
from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.images import ImageInput, preprocess_image, rgb_pil_images
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .conditioners.depth import DepthMap
from .conditioners.image_latents import ImageLatents
from .depth_map import as_depth_array
from .guided import TextGuidedPipeline
from .outputs import ImagePipelineOutput
from .parts import check_part
from .stable_diffusion import StableDiffusionBase
from .timesteps import check_strength

logger = logging.getLogger(__name__)


class StableDiffusionDepth2ImgPipeline(StableDiffusionBase):
    """Depth-to-image: ``pipe(prompt, image=init_image, strength=0.7)`` (or ``depth_map=...``)."""

    required_components = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
    optional_components = ("depth_estimator",)
    parts: tuple[str, ...] = (
        "vae",
        "text_encoder",
        "tokenizer",
        "unet",
        "scheduler",
        "depth_estimator",
        "feature_extractor",
    )
    _callback_tensor_inputs: tuple[str, ...] = (
        "latents",
        "prompt_embeds",
        "negative_prompt_embeds",
        "depth_mask",
    )

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        scheduler: Any = None,
        depth_estimator: Any = None,
        feature_extractor: Any = None,
    ) -> None:
        """diffusers' constructor. ``depth_estimator``: the bundle's DPT engine (or None: depth maps are then
        given); ``feature_extractor``: sdrt's :class:`DPTImageProcessor` or transformers' (its settings are
        read), by default the one the bundle records."""
        check_part(type(self).__name__, "depth_estimator", depth_estimator)
        TextGuidedPipeline.__init__(
            self, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
        )
        self.depth_estimator = depth_estimator
        self.feature_extractor = self._processor(feature_extractor)

    def _processor(self, feature_extractor: Any) -> DPTImageProcessor | None:
        if isinstance(feature_extractor, DPTImageProcessor):
            return feature_extractor
        if feature_extractor is None:
            folder = self.bundle.path / "feature_extractor"
            return DPTImageProcessor.from_pretrained(folder) if (folder / CONFIG_NAME).is_file() else None
        if type(feature_extractor).__module__.startswith("transformers") and hasattr(
            feature_extractor, "to_dict"
        ):
            return DPTImageProcessor(**feature_extractor.to_dict())
        raise InputTypeError(
            f"feature_extractor must be sdrt.runtime.dpt_processor.DPTImageProcessor or transformers' "
            f"DPTImageProcessor, got {type(feature_extractor).__name__}"
        )

    def _config_values(self) -> dict[str, Any]:
        return {}

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        depth_map: Any = None,
        strength: float = 0.8,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs: Any,
    ) -> ImagePipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL, NumPy HWC/NHWC in [0, 1] (uint8 in 0..255),
        torch CHW/NCHW (4 channels: latents, with ``depth_map``). ``depth_map``: N x H x W (or H x W) NumPy,
        CuPy or torch depths, any scale (min and max become -1 and 1)."""
        check_strength(strength)
        if image is None:
            raise InputError("`image` input cannot be undefined: depth-to-image starts from an image")
        latent_channels = self.vae.config.latent_channels
        pixels = preprocess_image(image, scale_factor=self.vae_scale_factor, latent_channels=latent_channels)
        scale = self.vae_scale_factor if pixels.shape[1] == latent_channels else 1
        height, width = pixels.shape[2] * scale, pixels.shape[3] * scale
        self.check_size(height, width)
        depth = self.estimate_depth(image, scale != 1) if depth_map is None else as_depth_array(depth_map)
        latent_size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        conditioners = [ImageLatents(pixels), DepthMap(depth, latent_size)]
        return self.generate(self.open_call((height, width), conditioners, strength=strength))

    def estimate_depth(self, image: ImageInput, latents_given: bool) -> np.ndarray:
        """The DPT's ``predicted_depth`` (N x H x W) for the images, through the DPT processor's steps."""
        if latents_given:
            raise InputError(
                "`image` holds latents, so the depth estimator cannot see it: pass `depth_map` too"
            )
        if self.depth_estimator is None or self.feature_extractor is None:
            raise InputError(
                f"{self.bundle.path} has no depth_estimator engine (its model folder had none): pass `depth_map` "
                "(N x H x W), or rebuild the bundle from a folder with depth_estimator/ and feature_extractor/"
            )
        pixel_values = self.feature_extractor(rgb_pil_images(image))
        depth = self.depth_estimator(pixel_values)
        return np.asarray(depth.get() if hasattr(depth, "get") else depth, dtype=np.float32)

    def output(self, images: Any, return_dict: bool) -> Any:
        return ImagePipelineOutput(images) if return_dict else (images,)
