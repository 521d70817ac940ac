"""Tiny, seeded model folders of the image-conditioned pipelines (image variation, Stable unCLIP img2img,
Paint-by-Example), saved by diffusers' own pipelines from small transformers / diffusers configs."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from tests.models import TEXT_HIDDEN, _finish_tokenizers, _text_encoder, _tokenizer, _unet, _vae

EMBED = TEXT_HIDDEN  # the image embedding's width: the UNet's cross-attention width
VISION = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, image_size=32, patch_size=8)


def clip_processor(size: int = 32):
    """transformers' CLIP image processor (its PIL backend where torchvision is missing) at ``size``."""
    import transformers

    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def _vision_encoder(*, seed: int, layers: int = 3):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(**VISION, num_hidden_layers=layers, projection_dim=EMBED)
    return CLIPVisionModelWithProjection(config).eval()


def _ddim():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        steps_offset=1,
        clip_sample=False,
    )


def make_image_variation(folder: Path, *, seed: int = 0) -> Path:
    from diffusers import StableDiffusionImageVariationPipeline

    pipe = StableDiffusionImageVariationPipeline(
        vae=_vae(seed=seed + 1),
        image_encoder=_vision_encoder(seed=seed + 2),
        unet=_unet(seed=seed + 3),
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=clip_processor(),
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return Path(folder)


def make_unclip_img2img(folder: Path, *, seed: int = 0) -> Path:
    """SD 2-style text conditioning plus the noised image embedding as the UNet's class labels (projection)."""
    from diffusers import DDPMScheduler, StableUnCLIPImg2ImgPipeline
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
        StableUnCLIPImageNormalizer,
    )

    tokenizer = _tokenizer(pad_token="!")
    normalizer = StableUnCLIPImageNormalizer(embedding_dim=EMBED)
    with torch.no_grad():  # a normaliser that changes something
        generator = torch.Generator().manual_seed(seed)
        normalizer.mean.copy_(0.3 * torch.randn(1, EMBED, generator=generator))
        normalizer.std.copy_(0.5 + torch.rand(1, EMBED, generator=generator))
    unet = _unet(
        seed=seed + 3,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=2 * EMBED,
        use_linear_projection=True,
    )
    with torch.no_grad():  # a class embedding strong enough for the image to show in a few steps
        for layer in (unet.class_embedding.linear_1, unet.class_embedding.linear_2):
            layer.weight.mul_(6.0)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=clip_processor(),
        image_encoder=_vision_encoder(seed=seed + 2),
        image_normalizer=normalizer,
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=tokenizer,
        text_encoder=_text_encoder(tokenizer, seed=seed + 4, hidden_act="gelu"),
        unet=unet,
        scheduler=_ddim(),
        vae=_vae(seed=seed + 1),
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(Path(folder), keep_tokenizer_json=False)
    return Path(folder)


def make_paint_by_example(folder: Path, *, seed: int = 0) -> Path:
    """A 9-channel UNet (latents, masked-image latents, mask) conditioned on PaintByExampleImageEncoder."""
    from diffusers import PaintByExamplePipeline
    from diffusers.pipelines.deprecated.paint_by_example import PaintByExampleImageEncoder
    from transformers import CLIPVisionConfig

    torch.manual_seed(seed + 2)
    config = CLIPVisionConfig(**VISION, num_hidden_layers=4, projection_dim=EMBED)  # one mapper block
    encoder = PaintByExampleImageEncoder(config, proj_size=EMBED).eval()
    with torch.no_grad():  # embeddings about as large as the random unconditional vector, so they show
        encoder.proj_out.weight.mul_(10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = PaintByExamplePipeline(
            vae=_vae(seed=seed + 1),
            image_encoder=encoder,
            unet=_unet(seed=seed + 3, in_channels=9),
            scheduler=_ddim(),
            safety_checker=None,
            feature_extractor=clip_processor(),
        )
    pipe.save_pretrained(folder)
    return Path(folder)


def picture(height: int, width: int, seed: int = 0):
    """A random RGB PIL picture."""
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def with_scheduler(ref, pipe, name: str):
    """diffusers' pipeline and sdrt's, each with its library's scheduler ``name`` from its own config."""
    import diffusers

    import sdrt.schedulers

    ref.scheduler = getattr(diffusers, name).from_config(ref.scheduler.config)
    pipe.scheduler = getattr(sdrt.schedulers, name).from_config(pipe.scheduler.config)
    return ref, pipe
