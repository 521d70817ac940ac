"""Models conditioned on an image's CLIP embedding: image variation (the embedding is the UNet's one-token
``encoder_hidden_states``), Stable unCLIP image-to-image (the noised embedding is the UNet's ``class_labels``,
beside a text prompt) and Paint-by-Example (an example image's embedding conditions a 9-channel inpainting UNet).

Each has an ``image_encoder`` and the CLIP processor's settings (``feature_extractor/``) the bundle keeps.
"""

from __future__ import annotations

from .base import IMAGE_VARIATION, PAINT_BY_EXAMPLE, SD_LATENT_RGB, UNCLIP_IMAGE_TO_IMAGE, Family
from .sd import SD_PARTS

CLIP_VISION = ("CLIPVisionModelWithProjection",)
PROCESSOR = "feature_extractor/preprocessor_config.json"
UNET_VAE = {"unet": ("UNet2DConditionModel",), "vae": ("AutoencoderKL",)}

IMAGE_VARIATION_FAMILY = Family(
    name="image-variation",
    title="image variation",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("StableDiffusionImageVariationPipeline",),
    required={"image_encoder": CLIP_VISION, **UNET_VAE},
    hashed_with={"image_encoder": (PROCESSOR,)},
    support=("feature_extractor",),
    tasks={IMAGE_VARIATION: "image_variation:StableDiffusionImageVariationPipeline"},
    unet_sequence=1,
)

UNCLIP_IMG2IMG = Family(
    name="unclip-img2img",
    title="Stable unCLIP image-to-image",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("StableUnCLIPImg2ImgPipeline",),
    required={**SD_PARTS, "image_encoder": CLIP_VISION},
    hashed_with={"image_encoder": (PROCESSOR,)},
    # the embedding's normaliser (mean and std) and noising schedule, read by the runtime from the bundle
    support=("tokenizer", "feature_extractor", "image_normalizer", "image_noising_scheduler"),
    tasks={UNCLIP_IMAGE_TO_IMAGE: "unclip_img2img:StableUnCLIPImg2ImgPipeline"},
    default_steps=20,
)

PAINT_BY_EXAMPLE_FAMILY = Family(
    name="paint-by-example",
    title="Paint-by-Example",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("PaintByExamplePipeline",),
    required={"image_encoder": ("PaintByExampleImageEncoder",), **UNET_VAE},
    hashed_with={"image_encoder": (PROCESSOR,)},
    support=("feature_extractor",),
    tasks={PAINT_BY_EXAMPLE: "paint_by_example:PaintByExamplePipeline"},
    unet_sequence=1,
)
