"""Stable Diffusion 2 depth: image-to-image whose UNet also sees a depth map, estimated by the folder's DPT
(optional: a bundle without it runs on given depth maps)."""

from __future__ import annotations

from .base import CLIP_SKIP, DEPTH, SD_LATENT_RGB, Family
from .sd import SD_PARTS

SD_DEPTH = Family(
    name="depth",
    title="depth-to-image",
    latent_rgb=SD_LATENT_RGB,
    folder_pipelines=("StableDiffusionDepth2ImgPipeline",),
    required=SD_PARTS,
    optional={"depth_estimator": ("DPTForDepthEstimation",)},
    hashed_with={"depth_estimator": ("feature_extractor/preprocessor_config.json",)},
    support=("tokenizer", "feature_extractor"),
    features=frozenset({CLIP_SKIP}),
    tasks={DEPTH: "depth_to_image:StableDiffusionDepth2ImgPipeline"},
)
