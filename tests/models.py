"""Tiny diffusers model folders, saved with the pipelines' own ``save_pretrained``.

Each ``make_*`` function builds a complete, seeded pipeline folder (model_index.json, scheduler,
tokenizer(s), text encoder(s), unet, vae) in seconds, so the export and runtime tests go through
the real diffusers/transformers loading code. The tokenizer is a small CLIP-format byte-level BPE
vocabulary generated here (the 256 byte characters, the same with ``</w>``, a few merges, then the
two special tokens), so nothing is downloaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

TEXT_HIDDEN = 32
TEXT_PROJECTION = 32
_WORDS = (
    "a",
    "an",
    "the",
    "photo",
    "of",
    "cat",
    "dog",
    "red",
    "blue",
    "circle",
    "square",
    "on",
    "background",
)


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def write_tiny_vocab(folder: Path) -> tuple[Path, Path]:
    """Write a CLIP-format vocab.json/merges.txt whose merges spell out ``_WORDS`` letter by letter."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = list(_bytes_to_unicode().values())
    tokens += [t + "</w>" for t in tokens]
    merges: list[tuple[str, str]] = []
    seen = set(tokens)
    for word in _WORDS:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            pair = (symbols[0], symbols[1])
            merged = pair[0] + pair[1]
            if pair not in merges:
                merges.append(pair)
            if merged not in seen:
                seen.add(merged)
                tokens.append(merged)
            symbols = [merged, *symbols[2:]]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab_file = folder / "vocab.json"
    merges_file = folder / "merges.txt"
    vocab_file.write_text(
        json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False), encoding="utf-8"
    )
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    merges_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def _tokenizer(*, pad_token: str = "<|endoftext|>"):
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as scratch:
        vocab_file, merges_file = write_tiny_vocab(Path(scratch))
        return CLIPTokenizer(str(vocab_file), str(merges_file), pad_token=pad_token, model_max_length=77)


def _finish_tokenizers(folder: Path, *, keep_tokenizer_json: bool) -> None:
    """Add vocab.json/merges.txt beside what transformers saved (the published SD repos ship them); with
    ``keep_tokenizer_json=False`` the folder has the SD 1.x/2.x repo layout (no tokenizer.json)."""
    for name in ("tokenizer", "tokenizer_2"):
        sub = folder / name
        if sub.is_dir():
            write_tiny_vocab(sub)
            if not keep_tokenizer_json:
                (sub / "tokenizer.json").unlink(missing_ok=True)


def _text_config(tokenizer, *, hidden_act: str = "quick_gelu", projection_dim: int = TEXT_PROJECTION):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act=hidden_act,
        projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _vae(*, seed: int, channels: int = 3):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        **dict(in_channels=channels, out_channels=channels),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    ).eval()


def _unet(*, seed: int, in_channels: int = 4, cross_attention_dim: int = TEXT_HIDDEN, **extra):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    config = dict(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    config.update(extra)
    return UNet2DConditionModel(**config).eval()


def _scheduler(*, prediction_type: str = "epsilon"):
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )


def _text_encoder(tokenizer, *, seed: int, projection: bool = False, **config_extra):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = _text_config(tokenizer, **config_extra)
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return cls(config).eval()


def make_sd1(folder: Path, *, seed: int = 0, vae_channels: int = 3) -> Path:
    """A Stable Diffusion 1.x-shaped pipeline (epsilon prediction); ``vae_channels=4``: an LDM3D one (RGB + depth)."""
    from diffusers import StableDiffusionLDM3DPipeline as LDM3D
    from diffusers import StableDiffusionPipeline as SD

    folder = Path(folder)
    tokenizer = _tokenizer()
    pipe = (SD if vae_channels == 3 else LDM3D)(
        vae=_vae(seed=seed + 1, channels=vae_channels),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        tokenizer=tokenizer,
        unet=_unet(seed=seed + 3),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=False)
    return folder


def make_sd2(folder: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion 2.x-shaped pipeline: v-prediction, linear projections, per-block head dims."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    tokenizer = _tokenizer(pad_token="!")
    unet = _unet(seed=seed + 3, use_linear_projection=True, attention_head_dim=[2, 4], upcast_attention=True)
    pipe = StableDiffusionPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2, hidden_act="gelu"),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(prediction_type="v_prediction"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=False)
    return folder


def _sdxl_unet(*, seed: int, in_channels: int = 4):
    time_embed = 8
    return _unet(
        seed=seed,
        in_channels=in_channels,
        cross_attention_dim=2 * TEXT_HIDDEN,
        attention_head_dim=[2, 4],
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed,
        projection_class_embeddings_input_dim=TEXT_PROJECTION + 6 * time_embed,
        transformer_layers_per_block=[1, 2],
    )


def make_sdxl(folder: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion XL-shaped pipeline: two text encoders (the second with projection), text_time."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    folder = Path(folder)
    tokenizer = _tokenizer()
    tokenizer_2 = _tokenizer(pad_token="!")
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        text_encoder_2=_text_encoder(tokenizer_2, seed=seed + 4, projection=True, hidden_act="gelu"),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=_sdxl_unet(seed=seed + 3),
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=True)
    return folder


def make_inpaint(folder: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion inpainting pipeline: 9-channel UNet (latents, mask, masked-image latents)."""
    from diffusers import StableDiffusionInpaintPipeline

    folder = Path(folder)
    tokenizer = _tokenizer()
    pipe = StableDiffusionInpaintPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        tokenizer=tokenizer,
        unet=_unet(seed=seed + 3, in_channels=9),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=True)
    return folder


def _dpt(*, seed: int):
    """A tiny ViT DPT (32 x 32 input, 64 x 64 depth) with random weights scaled by fan-in: its default init
    (zeroed position embeddings, small convolutions) gives a nearly constant depth."""
    from transformers import DPTConfig, DPTForDepthEstimation

    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[16, 16, 32, 32],
        fusion_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
    )
    model = DPTForDepthEstimation(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1:
                param.normal_(0.0, 1.5 / param[0].numel() ** 0.5)
            elif "embeddings" in name:
                param.normal_(0.0, 0.5)
    return model


def dpt_processor(size: int = 32):
    """transformers' DPT image processor (its PIL backend where torchvision is missing) at ``size``."""
    import warnings

    from transformers import DPTImageProcessor

    settings = dict(size={"height": size, "width": size}, keep_aspect_ratio=False, ensure_multiple_of=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DPTImageProcessor(**settings, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def make_depth(folder: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion 2 depth-to-image pipeline: 5-channel UNet (latents, depth), a tiny DPT and its
    image processor."""
    from diffusers import StableDiffusionDepth2ImgPipeline

    folder = Path(folder)
    tokenizer = _tokenizer(pad_token="!")
    pipe = StableDiffusionDepth2ImgPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2, hidden_act="gelu"),
        tokenizer=tokenizer,
        unet=_unet(seed=seed + 3, in_channels=5, use_linear_projection=True, attention_head_dim=[2, 4]),
        scheduler=_scheduler(prediction_type="v_prediction"),
        depth_estimator=_dpt(seed=seed + 5),
        feature_extractor=dpt_processor(),
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=False)
    return folder


def make_uncond(folder: Path, *, seed: int = 0) -> Path:
    """An unconditional DDPM pipeline (UNet2DModel on 3-channel pixels, DDPMScheduler)."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    folder = Path(folder)
    torch.manual_seed(seed + 3)
    unet = UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=8,
    ).eval()
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000))
    pipe.save_pretrained(folder)
    return folder


def make_controlnet(model_dir: Path, folder: Path, *, seed: int = 0, std: float = 0.1) -> Path:
    """A tiny ControlNet from the model's UNet (``ControlNetModel.from_unet``), saved with ``save_pretrained``.

    Its zero convolutions and its conditioning embedding (``conv_out`` too) get random normal weights: with
    diffusers' init the residuals are zero, or dominated by ``conv_out``'s bias, and the control image would
    barely change the output.
    """
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(Path(model_dir) / "unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 16)).eval()
    generator = torch.Generator().manual_seed(seed)
    randomized = [controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    randomized.append(controlnet.controlnet_cond_embedding)
    with torch.no_grad():
        for module in randomized:
            for param in module.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    controlnet.save_pretrained(folder)
    return Path(folder)


MAKERS = {
    "sd1": make_sd1,
    "sd2": make_sd2,
    "sdxl": make_sdxl,
    "inpaint": make_inpaint,
    "depth": make_depth,
    "uncond": make_uncond,
    "ldm3d": lambda folder: make_sd1(folder, vae_channels=4),
}
