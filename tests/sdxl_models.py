"""Tiny SDXL folders beside ``tests/models.py``'s base: a refiner (second text encoder only, aesthetic score in
the time ids) and an inpainting model (9-channel UNet), made from the same classes with small configs."""

from __future__ import annotations

from pathlib import Path

from tests.models import (
    TEXT_HIDDEN,
    TEXT_PROJECTION,
    _finish_tokenizers,
    _text_encoder,
    _tokenizer,
    _unet,
    _vae,
)


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
    )


def make_sdxl_refiner(folder: Path, *, seed: int = 20) -> Path:
    """An SDXL refiner-shaped img2img folder: ``text_encoder`` None, the UNet conditioned on the second encoder
    alone, 5 time ids (original size, crop, aesthetic score), ``requires_aesthetics_score=True``."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    folder = Path(folder)
    tokenizer_2 = _tokenizer(pad_token="!")
    time_embed = 8
    unet = _unet(
        seed=seed + 3,
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=[2, 4],
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed,
        projection_class_embeddings_input_dim=TEXT_PROJECTION + 5 * time_embed,
    )
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=None,
        text_encoder_2=_text_encoder(tokenizer_2, seed=seed + 4, projection=True, hidden_act="gelu"),
        tokenizer=None,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_scheduler(),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=True)
    return folder


def make_sdxl_inpaint(folder: Path, *, seed: int = 30) -> Path:
    """An SDXL inpainting folder: the base's parts with a 9-channel UNet (latents, mask, masked image)."""
    from diffusers import StableDiffusionXLInpaintPipeline

    from tests.models import _sdxl_unet

    folder = Path(folder)
    tokenizer = _tokenizer()
    tokenizer_2 = _tokenizer(pad_token="!")
    pipe = StableDiffusionXLInpaintPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        text_encoder_2=_text_encoder(tokenizer_2, seed=seed + 4, projection=True, hidden_act="gelu"),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=_sdxl_unet(seed=seed + 3, in_channels=9),
        scheduler=_scheduler(),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=True)
    return folder


SDXL_MAKERS = {"sdxl-refiner": make_sdxl_refiner, "sdxl-inpaint": make_sdxl_inpaint}
