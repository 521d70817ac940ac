"""Test tooling: tiny models with Stable Diffusion's block topology, written as original-layout
(CompVis / A1111) single-file checkpoints.

The writer is the reverse of diffusers' single-file loader (``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint``, ``convert_ldm_clip_checkpoint``), following the key tables of
diffusers' ``scripts/convert_diffusers_to_original_stable_diffusion.py``: the original layout numbers
the UNet's blocks ``input_blocks.N`` / ``middle_block`` / ``output_blocks.N`` and the VAE's
``down.N.block.M`` / ``up.N.block.M``, so it only describes SD's topology (4 levels of 2 layers).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.models import _finish_tokenizers, _scheduler, _text_encoder, _tokenizer

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."


def _unet_renames(config) -> list[tuple[str, str]]:
    """(diffusers prefix, original prefix) of an SD-style UNet: each level's layers and its down/upsampler
    numbered in one ``input_blocks`` / ``output_blocks`` sequence, a layer's attention as its ``.1``."""
    pairs = [
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("add_embedding.linear_1.", "label_emb.0.0."),  # SDXL's text_time embedding
        ("add_embedding.linear_2.", "label_emb.0.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
        ("mid_block.attentions.0.", "middle_block.1."),
    ]
    pairs += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.") for j in range(2)]
    layers, downs, ups = config["layers_per_block"], config["down_block_types"], config["up_block_types"]
    step = layers + 1
    for i, kind in enumerate(downs):
        for j in range(layers):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{step * i + j + 1}.0."))
            if "CrossAttn" in kind:
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{step * i + j + 1}.1."))
        if i < len(downs) - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{step * (i + 1)}.0.op."))
    for i, kind in enumerate(ups):
        attention = "CrossAttn" in kind
        for j in range(step):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{step * i + j}.0."))
            if attention:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{step * i + j}.1."))
        if i < len(ups) - 1:
            pairs.append(
                (
                    f"up_blocks.{i}.upsamplers.0.",
                    f"output_blocks.{step * i + layers}.{2 if attention else 1}.",
                )
            )
    return pairs


_UNET_RESNET = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("time_emb_proj.", "emb_layers.1."),
    ("conv_shortcut.", "skip_connection."),
]


def _rename(key: str, pairs: list[tuple[str, str]]) -> str:
    for ours, theirs in pairs:
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    raise KeyError(f"no original-layout name for {key}")


def unet_to_original(state: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    out, renames = {}, _unet_renames(config)
    for key, value in state.items():
        if ".resnets." in key:
            block, _, rest = key.partition(".resnets.")
            index, _, name = rest.partition(".")
            name = next(
                (theirs + name[len(ours) :] for ours, theirs in _UNET_RESNET if name.startswith(ours)), name
            )
            key = f"{block}.resnets.{index}.{name}"
        out[UNET_PREFIX + _rename(key, renames)] = value
    return out


def _vae_renames() -> list[tuple[str, str]]:
    pairs = []
    for side in ("encoder", "decoder"):
        pairs.append((f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1."))
        pairs.append((f"{side}.conv_norm_out.", f"{side}.norm_out."))
        for j in range(2):
            pairs.append((f"{side}.mid_block.resnets.{j}.", f"{side}.mid.block_{j + 1}."))
    for i in range(4):
        for j in range(2):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        for j in range(3):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{3 - i}.block.{j}."))
        if i < 3:
            pairs.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
            pairs.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{3 - i}.upsample."))
    return pairs


_VAE_PARTS = [
    ("conv_shortcut.", "nin_shortcut."),
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def vae_to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    renames = _vae_renames()
    for key, value in state.items():
        try:
            key = _rename(key, renames)
        except KeyError:  # conv_in, conv_out, quant_conv, post_quant_conv keep their names
            pass
        for ours, theirs in _VAE_PARTS:
            key = key.replace("." + ours, "." + theirs)
        if ".attn_1." in key and value.dim() == 2:
            value = value[:, :, None, None]  # the original mid-block attention is 1x1 convolutions
        out[VAE_PREFIX + key] = value
    return out


def clip_to_original(state: dict[str, torch.Tensor], prefix: str = CLIP_PREFIX) -> dict[str, torch.Tensor]:
    """transformers 5 may save CLIPTextModel without the ``text_model.`` level original checkpoints have."""
    return {
        prefix + (key if key.startswith("text_model.") else "text_model." + key): value
        for key, value in state.items()
    }


_OPEN_CLIP_PARTS = [
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
    ("self_attn.out_proj.", "attn.out_proj."),
]
_OPEN_CLIP_LAYERS = {
    "embeddings.position_embedding.weight": "positional_embedding",
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}


def open_clip_to_original(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A CLIP text encoder in OpenCLIP's layout (SD 2.x, SDXL's second encoder): ``transformer.resblocks.N``,
    q/k/v stacked as ``attn.in_proj_*``, ``text_projection`` as a (hidden, projection) matrix."""
    out = {}
    stacked: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.removeprefix("text_model.")
        if key.endswith("position_ids"):
            continue
        if key in _OPEN_CLIP_LAYERS:
            out[prefix + _OPEN_CLIP_LAYERS[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T
        elif ".self_attn." in key and "_proj." in key and "out_proj" not in key:
            layer, _, rest = key.removeprefix("encoder.layers.").partition(".self_attn.")
            which, _, kind = rest.partition("_proj.")  # q|k|v, weight|bias
            stacked.setdefault(f"transformer.resblocks.{layer}.attn.in_proj_{kind}", {})[which] = value
        else:
            layer, _, rest = key.removeprefix("encoder.layers.").partition(".")
            for ours, theirs in _OPEN_CLIP_PARTS:
                rest = rest.replace(ours, theirs)
            out[prefix + f"transformer.resblocks.{layer}.{rest}"] = value
    for key, parts in stacked.items():
        out[prefix + key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def original_state(pipe, kind: str) -> dict[str, torch.Tensor]:
    """An SD 1.x (``sd1``), 2.x (``sd2``) or SDXL (``sdxl``) diffusers pipeline's weights in the original
    single-file layout."""
    state = {}
    state |= unet_to_original(pipe.unet.state_dict(), pipe.unet.config)
    state |= vae_to_original(pipe.vae.state_dict())
    text = pipe.text_encoder.state_dict()
    if kind == "sdxl":
        state |= clip_to_original(text, "conditioner.embedders.0.transformer.")
        state |= open_clip_to_original(pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model.")
    elif kind == "sd2":
        state |= open_clip_to_original(text, "cond_stage_model.model.")
        hidden = pipe.text_encoder.config.hidden_size
        state["cond_stage_model.model.text_projection"] = torch.eye(hidden)  # SD 2 files hold one, unused
    else:
        state |= clip_to_original(text)
    return {key: value.detach().clone().contiguous() for key, value in state.items()}


def write_single_file(model: Path, path: Path, kind: str = "sd1") -> Path:
    """The diffusers folder ``model`` written as an original-layout ``.safetensors`` file."""
    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    pipe = DiffusionPipeline.from_pretrained(model)
    save_file(original_state(pipe, kind), str(path))
    return path


def sd_topology_unet(*, seed: int, **extra):
    """SD's UNet topology (4 levels of 2 layers, cross attention in the first 3) at small widths."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    config = dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    return UNet2DConditionModel(**{**config, **extra}).eval()


def sd_topology_vae(*, seed: int):
    """SD's VAE topology (4 levels of 2 layers, attention in the mid block) at small widths."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    ).eval()


def make_sd_topology(folder: Path, kind: str = "sd1", *, seed: int = 0) -> Path:
    """A tiny SD 1.x (``sd1``), SD 1.x inpainting (``inpaint``: a 9-channel UNet) or 2.x v-prediction (``sd2``:
    linear projections, per-block heads, upcast attention, a GELU text encoder) pipeline folder whose weights
    have an original-layout name each."""
    import diffusers

    sd2 = kind == "sd2"
    tokenizer = _tokenizer(pad_token="!" if sd2 else "<|endoftext|>")
    extra = {"in_channels": 9} if kind == "inpaint" else {}
    if sd2:
        extra = {"use_linear_projection": True, "attention_head_dim": [2, 2, 4, 4], "upcast_attention": True}
    cls = diffusers.StableDiffusionInpaintPipeline if kind == "inpaint" else diffusers.StableDiffusionPipeline
    pipe = cls(
        vae=sd_topology_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2, **({"hidden_act": "gelu"} if sd2 else {})),
        tokenizer=tokenizer,
        unet=sd_topology_unet(seed=seed + 3, **extra),
        scheduler=_scheduler(prediction_type="v_prediction" if sd2 else "epsilon"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(Path(folder), keep_tokenizer_json=False)
    return Path(folder)


def _sdxl_unet(*, seed: int, cross_attention_dim: int, projection_dim: int):
    """SDXL's UNet topology (3 levels of 2 layers, cross attention in the last 2, text_time) at small widths."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(16, 32, 32),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 1, 2),
        attention_head_dim=(2, 2, 4),
        use_linear_projection=True,
        cross_attention_dim=cross_attention_dim,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=projection_dim + 6 * 8,
        norm_num_groups=8,
    ).eval()


def make_sdxl_topology(folder: Path, *, seed: int = 0) -> Path:
    """A tiny SDXL pipeline folder in SDXL's topology. The two text encoders differ in width (32 and 48),
    since diffusers tells SDXL's two encoders apart in a single file by their widths (768 and 1280)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModelWithProjection

    from tests.models import _text_config

    tokenizer, tokenizer_2 = _tokenizer(), _tokenizer(pad_token="!")
    torch.manual_seed(seed + 4)
    config_2 = _text_config(tokenizer_2, hidden_act="gelu")
    config_2.hidden_size, config_2.intermediate_size = 48, 96
    pipe = StableDiffusionXLPipeline(
        vae=sd_topology_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        text_encoder_2=CLIPTextModelWithProjection(config_2).eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=_sdxl_unet(seed=seed + 3, cross_attention_dim=32 + 48, projection_dim=config_2.projection_dim),
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(Path(folder), keep_tokenizer_json=True)
    return Path(folder)
