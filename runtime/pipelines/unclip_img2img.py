"""``StableUnCLIPImg2ImgPipeline``: variations of an image guided by a prompt (Stable unCLIP 2.1), as diffusers
runs it: the prompt conditions the UNet's cross-attention as in SD 2, and the image's CLIP embedding, noised to
``noise_level`` (``conditioners/noised_image_embeds.py``), is its ``class_labels``. The image is not encoded by
the VAE: the latents start from noise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike
from sdrt.schedulers import scheduler_from_config

from .call_state import pipeline_call, take_callback
from .conditioners.noised_image_embeds import ImageNormalizer, NoisedImageEmbeds
from .guided import TextGuidedPipeline
from .image_embeds import check_encoder, clip_processor, encode_images, image_count
from .outputs import ImagePipelineOutput
from .parts import check_part
from .stable_diffusion import StableDiffusionBase


class StableUnCLIPImg2ImgPipeline(StableDiffusionBase):
    """``pipe(image, prompt="", noise_level=0, num_inference_steps=20, guidance_scale=10)``."""

    required_components = ("text_encoder", "image_encoder", "unet", "vae_decoder")
    parts: tuple[str, ...] = (
        "feature_extractor",
        "image_encoder",
        "image_normalizer",
        "image_noising_scheduler",
        "tokenizer",
        "text_encoder",
        "unet",
        "scheduler",
        "vae",
    )

    def __init__(
        self,
        feature_extractor: Any = None,
        image_encoder: Any = None,
        image_normalizer: Any = None,
        image_noising_scheduler: Any = None,
        tokenizer: Any = None,
        text_encoder: Any = None,
        unet: Any = None,
        scheduler: Any = None,
        vae: Any = None,
    ) -> None:
        """diffusers' constructor; ``image_normalizer`` (an ``ImageNormalizer``) and ``image_noising_scheduler``
        (an sdrt scheduler) default to the bundle's."""
        check_encoder(type(self).__name__, image_encoder)
        check_part(type(self).__name__, "image_noising_scheduler", image_noising_scheduler)
        self.image_encoder = image_encoder  # before the engine check of the base
        TextGuidedPipeline.__init__(
            self, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
        )
        self.feature_extractor = clip_processor(self.bundle, feature_extractor)
        if image_normalizer is not None and not isinstance(image_normalizer, ImageNormalizer):
            raise InputError(
                "image_normalizer must be sdrt's ImageNormalizer (its mean and std); leave it None for the bundle's"
            )
        self.image_normalizer = image_normalizer or ImageNormalizer.from_pretrained(
            self.bundle.path / "image_normalizer"
        )
        self.image_noising_scheduler = image_noising_scheduler or scheduler_from_config(
            self.bundle.path / "image_noising_scheduler"
        )
        self.safety_checker = None

    def _config_values(self) -> dict[str, Any]:
        return {}

    @pipeline_call
    def __call__(
        self,
        image: Any = None,
        prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 10,
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
        noise_level: int = 0,
        image_embeds: Any = None,
        clip_skip: int | None = None,
    ) -> ImagePipelineOutput | tuple:
        """diffusers' arguments and defaults. ``image``: PIL images, arrays in [0, 1], a file path, or a torch
        tensor of CLIP ``pixel_values``; or ``image_embeds`` (images x D) instead. ``prompt`` defaults to ""."""
        take_callback(self._state, callback, callback_steps)
        arguments = self.call_arguments()
        if prompt is None and prompt_embeds is None:
            arguments["prompt"] = [""] * len(image) if isinstance(image, list) else ""
        embeds = self._image_embeds(image, image_embeds, noise_level)
        prompts = arguments["prompt"]
        batch = (len(prompts) if isinstance(prompts, list) else 1) if prompts is not None else None
        if batch is None:
            batch = int(prompt_embeds.shape[0])
        per_prompt = num_images_per_prompt
        repeat_by = batch * per_prompt if isinstance(image, Image.Image) else per_prompt
        default_height, default_width = self.default_size()
        conditioner = NoisedImageEmbeds(
            embeds, noise_level, repeat_by, self.image_normalizer, self.image_noising_scheduler
        )
        size = (height or default_height, width or default_width)
        return self.generate(self.open_call(size, [conditioner]))

    def _image_embeds(self, image: Any, image_embeds: Any, noise_level: Any) -> Any:
        """The embeddings to noise: the encoder's for ``image``, or the caller's ``image_embeds``."""
        most = int(self.image_noising_scheduler.config.num_train_timesteps) - 1
        if isinstance(noise_level, bool) or not isinstance(noise_level, int) or not 0 <= noise_level <= most:
            raise InputError(
                f"`noise_level` must be an int between 0 and {most}, inclusive; got {noise_level!r}"
            )
        if (image is None) == (image_embeds is None):
            raise InputError("pass either `image` or `image_embeds` (one of the two, not both)")
        if image_embeds is not None:
            embeds = self.to_xp(image_embeds)
            if embeds.ndim != 2:
                raise InputError(f"`image_embeds` must be images x D, got shape {tuple(embeds.shape)}")
            return embeds
        if image_count(image) < 1:
            raise InputError("`image` is an empty list")
        return encode_images(self, image, "image")["image_embeds"]

    def output(self, images: Any, return_dict: bool) -> Any:
        return ImagePipelineOutput(images) if return_dict else (images,)
