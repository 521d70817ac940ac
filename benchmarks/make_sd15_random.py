"""Write an SD1.5-sized diffusers pipeline folder with random (seeded) weights, for benchmarks.

    python -m benchmarks.make_sd15_random .work/sd15-random [--seed 0]
    python -m benchmarks.make_sd15_random .work/lcm15-random --lcm      # the LCM architecture
    python -m benchmarks.make_sd15_random .work/taesd-random --tiny-vae # TAESD's AutoencoderTiny

The UNet has the real SD1.5 config (tests/export/sd15_unet.py), the VAE and the CLIP text encoder
have SD1.5's sizes (AutoencoderKL 128/256/512/512, CLIP ViT-L/14 text tower: 12 layers, width 768),
the scheduler is SD1.5's PNDM. With ``--lcm``, a ``LatentConsistencyModelPipeline`` instead: the same
parts, the UNet with ``time_cond_proj_dim=256`` (LCM-Dreamshaper's, the guidance-scale embedding) and
its ``LCMScheduler``; with ``--tiny-vae``, only an ``AutoencoderTiny`` with TAESD's config (diffusers'
defaults). Random weights: for timing, not for pictures. The tokenizer is the tiny CLIP-format vocabulary of the tests (no
download); the text encoder keeps the real 49408-token embedding table, so its cost is the real one.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

SD15_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

SD15_TEXT_CONFIG = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}

SD15_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}


#: LCM-Dreamshaper-v7's scheduler (diffusers' LCMScheduler)
LCM_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "original_inference_steps": 50,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_scaling": 10.0,
    "prediction_type": "epsilon",
}


def make_tiny_vae_random(folder: Path, *, seed: int = 0) -> Path:
    """Save an ``AutoencoderTiny`` with TAESD's config (diffusers' defaults), random weights."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    AutoencoderTiny().eval().save_pretrained(folder)
    return folder


def make_sd15_random(folder: Path, *, seed: int = 0, lcm: bool = False) -> Path:
    """Save the pipeline to ``folder`` (save_pretrained, safetensors) and return it; ``lcm``: a
    ``LatentConsistencyModelPipeline`` whose UNet has ``time_cond_proj_dim=256``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        LatentConsistencyModelPipeline,
        LCMScheduler,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tests.export.sd15_unet import SD15_UNET_CONFIG
    from tests.models import write_tiny_vocab

    with tempfile.TemporaryDirectory() as scratch:
        vocab, merges = write_tiny_vocab(Path(scratch))
        tokenizer = CLIPTokenizer(str(vocab), str(merges), pad_token="<|endoftext|>", model_max_length=77)
    ids = {k: getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    text_config = CLIPTextConfig(**SD15_TEXT_CONFIG, **{f"{k}_token_id": v for k, v in ids.items()})
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(text_config).eval()
    torch.manual_seed(seed + 1)
    unet_config = {**SD15_UNET_CONFIG, **({"time_cond_proj_dim": 256} if lcm else {})}
    unet = UNet2DConditionModel(**unet_config).eval()
    torch.manual_seed(seed + 2)
    vae = AutoencoderKL(**SD15_VAE_CONFIG).eval()
    pipeline, scheduler = (
        (LatentConsistencyModelPipeline, LCMScheduler(**LCM_SCHEDULER_CONFIG))
        if lcm
        else (StableDiffusionPipeline, PNDMScheduler(**SD15_SCHEDULER_CONFIG))
    )
    pipe = pipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    write_tiny_vocab(folder / "tokenizer")  # vocab.json/merges.txt beside what transformers saved
    (folder / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--lcm", action="store_true", help="a LatentConsistencyModelPipeline (LCM UNet)")
    kind.add_argument("--tiny-vae", action="store_true", help="an AutoencoderTiny with TAESD's config")
    args = parser.parse_args()
    if args.tiny_vae:
        print(make_tiny_vae_random(args.folder, seed=args.seed))
    else:
        print(make_sd15_random(args.folder, seed=args.seed, lcm=args.lcm))


if __name__ == "__main__":
    main()
