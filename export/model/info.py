"""What the manifest says about the model as a whole, read from a model folder's configs (no torch):
the UNet, VAE and text settings the runtime needs, the build's size units, the support files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sdrt.runtime.bundle.manifest import TextInfo, UNetInfo, VaeInfo

from .folder import ModelFolder


def vae_part(folder: ModelFolder) -> str | None:
    """The folder part that decodes latents: ``vae``, or latent diffusion's ``vqvae`` (None: a pixel model)."""
    return next((part for part in ("vae", "vqvae") if part in folder.configs), None)


def vae_scale(folder: ModelFolder) -> int:
    """Image pixels per latent pixel: 2 per VAE down block after the first (1 without a VAE)."""
    part = vae_part(folder)
    return 2 ** (len(folder.configs[part]["block_out_channels"]) - 1) if part else 1


def size_units(folder: ModelFolder) -> tuple[tuple[int, int], int]:
    """(the model's default image (height, width), the multiple every image size must be)."""
    unet, scale = folder.configs[folder.family.denoiser], vae_scale(folder)
    sample = unet.get("sample_size", 64)
    sample_h, sample_w = (sample, sample) if isinstance(sample, int) else sample
    if "block_out_channels" in unet:
        downsampling = 2 ** (len(unet["block_out_channels"]) - 1)
    else:  # a transformer: its patches
        downsampling = int(unet.get("patch_size") or 1)
    multiple = max(8, scale * downsampling)
    return (sample_h * scale, sample_w * scale), multiple


def unet_info(folder: ModelFolder) -> UNetInfo:
    denoiser = folder.family.denoiser
    unet = folder.configs[denoiser]
    return UNetInfo(
        class_name=folder.classes[denoiser][1],
        in_channels=unet.get("in_channels", 4),
        out_channels=unet.get("out_channels", 4),
        sample_size=unet.get("sample_size", 64),
        addition_embed_type=unet.get("addition_embed_type"),
        time_cond_proj_dim=unet.get("time_cond_proj_dim"),
        num_class_embeds=unet.get("num_class_embeds"),
    )


def vae_info(folder: ModelFolder) -> VaeInfo | None:
    part = vae_part(folder)
    if part is None:
        return None
    vae = folder.configs[part]
    return VaeInfo(
        class_name=folder.classes[part][1],
        scaling_factor=vae.get("scaling_factor", VaeInfo.scaling_factor),
        shift_factor=vae.get("shift_factor"),
        latent_channels=vae.get("latent_channels", VaeInfo.latent_channels),
        scale_factor=vae_scale(folder),
        force_upcast=vae.get("force_upcast", False),
    )


def text_info(folder: ModelFolder) -> TextInfo | None:
    """The text settings; from the second text encoder where the folder has no first (SDXL's refiner)."""
    encoder = next((e for e in ("text_encoder", "text_encoder_2") if e in folder.configs), None)
    if encoder is None:
        return None
    return TextInfo(
        max_length=folder.configs[encoder].get("max_position_embeddings", 77),
        tokenizers=[t for t in ("tokenizer", "tokenizer_2") if tokenizer_encoder(t) in folder.configs],
        force_zeros_for_empty_prompt=folder.model_index.get("force_zeros_for_empty_prompt"),
        requires_aesthetics_score=folder.model_index.get("requires_aesthetics_score"),
    )


def tokenizer_encoder(tokenizer: str) -> str:
    """``tokenizer`` -> ``text_encoder``, ``tokenizer_2`` -> ``text_encoder_2``: the encoder it feeds."""
    return tokenizer.replace("tokenizer", "text_encoder")


def copy_support_files(folder: ModelFolder, work: Path) -> None:
    """The scheduler config, the tokenizers and the image processor's settings (the depth estimator's, the
    safety checker's), copied from the model folder into the bundle."""
    from sdrt.export.bundle_writer import copy_tokenizer

    (work / "scheduler").mkdir(parents=True, exist_ok=True)
    shutil.copy2(
        folder.path / "scheduler" / "scheduler_config.json", work / "scheduler" / "scheduler_config.json"
    )
    for name in folder.family.support:
        if name.endswith("scheduler"):  # a second scheduler: the x4 upscaler's low_res_scheduler
            (work / name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder.path / name / "scheduler_config.json", work / name / "scheduler_config.json")
    if "max_noise_level" in folder.model_index:  # the x4 upscaler's pipeline setting
        settings = {"max_noise_level": folder.model_index["max_noise_level"]}
        (work / "pipeline_config.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
    for tokenizer in ("tokenizer", "tokenizer_2"):
        if tokenizer_encoder(tokenizer) in folder.classes:
            copy_tokenizer(folder.part_path(tokenizer), work / tokenizer)
    if "bert" in folder.classes:  # LDMTextToImagePipeline's BERT tokenizer, read by sdrt.runtime.text.bert
        shutil.copytree(folder.part_path("tokenizer"), work / "tokenizer", dirs_exist_ok=True)
    id2label = folder.model_index.get("id2label") or folder.configs.get(folder.family.denoiser, {}).get(
        "id2label"
    )
    if id2label:  # DiT's class names (DiTPipeline's ``id2label``)
        (work / "id2label.json").write_text(json.dumps(id2label, indent=1), encoding="utf-8")
    if "feature_extractor" in folder.configs:  # the depth estimator's, image encoder's or safety checker's
        (work / "feature_extractor").mkdir(parents=True, exist_ok=True)
        processor = folder.support_file("feature_extractor/preprocessor_config.json")
        shutil.copy2(processor, work / "feature_extractor" / "preprocessor_config.json")
    copy_embedding_noising(folder, work)


def copy_embedding_noising(folder: ModelFolder, work: Path) -> None:
    """Stable unCLIP's image-embedding normaliser (its config and mean / std weights) and noising scheduler,
    which the runtime applies in NumPy."""
    for part in ("image_normalizer", "image_noising_scheduler"):
        if part in folder.family.support:
            source = folder.path / part
            files = [p for p in source.iterdir() if p.name.endswith((".json", ".safetensors"))]
            (work / part).mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copy2(file, work / part / file.name)
