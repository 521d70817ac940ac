"""``build-engine --ip-adapter FILE --image-encoder DIR``: an IP-Adapter file (diffusers' ``load_ip_adapter`` layout:
``image_proj.*`` and ``ip_adapter.N.to_k_ip/to_v_ip`` tensors) and its CLIP vision encoder folder taken in as parts
of the model. The file is checked against the UNet before anything is built; the UNet is then exported with the
adapter loaded by diffusers' own ``_load_ip_adapter_weights`` (its IPAdapterAttnProcessor2_0 layers take the image
tokens as an input and their per-layer scale as another), the projection (diffusers' ``ImageProjection``; the
component and runtime also describe Plus's ``IPAdapterPlusImageProjection``, which the file check refuses until it is
tested) as the ``image_projection`` component and the encoder as ``image_encoder``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrt.export.errors import ModelFolderError, OptionError
from sdrt.runtime.families import IP_ADAPTER, families_with

from .folder import ModelFolder

PROJECTION = "image_projection"  # the part (and component) the projection is exported as
ENCODER = "image_encoder"
ENCODER_CLASS = "CLIPVisionModelWithProjection"


@dataclass(frozen=True)
class IPAdapter:
    """What the build knows of an IP-Adapter file: the file, its projection's kind and sizes, and the UNet's
    attention layers it adds image attention to (diffusers' processor names, in ``ip_adapter_scale``'s order)."""

    file: Path
    projection: str  # diffusers' class: ImageProjection or IPAdapterPlusImageProjection
    image_embed_dim: int  # the projection's input width (CLIP's image_embeds, or hidden states for Plus)
    tokens: int  # image tokens per image, the projection's output length
    cross_attention_dim: int
    layers: tuple[str, ...]

    def projection_config(self, encoder: dict[str, Any]) -> dict[str, Any]:
        """The ``image_projection`` part's config: its input (pooled embeddings, or the encoder's hidden states
        for Plus, as diffusers' ``encode_image(output_hidden_states=...)``) and output sizes."""
        config = {
            "_class_name": self.projection,
            "image_embed_dim": self.image_embed_dim,
            "num_tokens": self.tokens,
            "cross_attention_dim": self.cross_attention_dim,
        }
        if self.projection != "ImageProjection":
            size, patch = int(encoder["image_size"]), int(encoder["patch_size"])
            config["sequence_length"] = (size // patch) ** 2 + 1
        return config

    def unet_option(self) -> dict[str, Any]:
        """The UNet's ``ip_adapter`` build option (its graph's extra inputs; in the UNet's inputs hash)."""
        return {"tokens": self.tokens, "layers": len(self.layers), "file": str(self.file)}


def add_ip_adapter(folder: ModelFolder, file: str | Path, encoder_dir: str | Path | None) -> ModelFolder:
    """``folder`` with the IP-Adapter of ``file`` and the encoder of ``encoder_dir`` as parts, checked first."""
    if not folder.family.takes(IP_ADAPTER):
        takers = ", ".join(f.title for f in families_with(IP_ADAPTER))
        raise ModelFolderError(
            f"--ip-adapter {file}: {folder.path} is a {folder.model_type} model; sdrt exports IP-Adapters for "
            f"{takers} models"
        )
    if encoder_dir is None:
        raise OptionError(
            f"--ip-adapter {file} needs --image-encoder DIR: the CLIPVisionModelWithProjection folder the adapter "
            "was trained with (h94/IP-Adapter's models/image_encoder for SD 1.x, sdxl_models/image_encoder for SDXL)"
        )
    path = Path(file).resolve()
    adapter = read_ip_adapter(path, folder.configs["unet"])
    encoder_path = Path(encoder_dir).resolve()
    encoder = _encoder_config(encoder_path)
    _check_encoder(adapter, encoder, encoder_path)
    parts, classes, configs = dict(folder.parts), dict(folder.classes), dict(folder.configs)
    parts[ENCODER], classes[ENCODER], configs[ENCODER] = (
        encoder_path,
        ("transformers", ENCODER_CLASS),
        encoder,
    )
    parts[PROJECTION], classes[PROJECTION] = path, ("diffusers", adapter.projection)
    configs[PROJECTION] = adapter.projection_config(encoder)
    return dataclasses.replace(folder, parts=parts, classes=classes, configs=configs, ip_adapter=adapter)


def read_ip_adapter(path: Path, unet: dict[str, Any]) -> IPAdapter:
    """The file's kind and sizes (its header only), refused with the file named where it does not fit ``unet``."""
    shapes = _shapes(path)
    proj = {k.removeprefix("image_proj."): v for k, v in shapes.items() if k.startswith("image_proj.")}
    attn = {k.removeprefix("ip_adapter."): v for k, v in shapes.items() if k.startswith("ip_adapter.")}
    if not proj or not attn:
        raise ModelFolderError(
            f"--ip-adapter {path}: no image_proj.* and ip_adapter.* tensors; pass an IP-Adapter file in the layout "
            "diffusers' load_ip_adapter reads (such as h94/IP-Adapter's ip-adapter_sd15.safetensors)"
        )
    if "proj.weight" in proj:
        out, embed_dim = proj["proj.weight"]
        projection, tokens, cross = "ImageProjection", 4, out // 4
    else:
        raise ModelFolderError(
            f"--ip-adapter {path}: its image projection is not the plain IP-Adapter's (image_proj.proj.weight); sdrt "
            "exports the plain IP-Adapter (ip-adapter_sd15, ip-adapter_sdxl...), not yet Plus, Full-face or FaceID"
        )
    layers = _check_layers(path, attn, unet, cross)
    return IPAdapter(path, projection, embed_dim, tokens, cross, layers)


def _shapes(path: Path) -> dict[str, list[int]]:
    if not path.is_file():
        raise ModelFolderError(f"--ip-adapter {path}: no such file")
    if path.suffix != ".safetensors":
        raise ModelFolderError(
            f"--ip-adapter {path}: sdrt reads IP-Adapter .safetensors files (h94/IP-Adapter ships them beside the "
            ".bin files); pass the .safetensors one"
        )
    try:
        raw = path.read_bytes()
        size = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + size])
        return {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelFolderError(f"--ip-adapter {path}: not a readable safetensors file ({err})") from err


def _check_layers(
    path: Path, attn: dict[str, list[int]], unet: dict[str, Any], cross: int
) -> tuple[str, ...]:
    """The UNet's cross-attention layers (diffusers' processor names, in order), each matched by the file's
    ``N.to_k_ip`` / ``N.to_v_ip`` (N = 1, 3, 5...: diffusers' key ids) in width and count."""
    width = int(unet["cross_attention_dim"])
    if cross != width:
        raise ModelFolderError(
            f"--ip-adapter {path}: it projects images to a cross-attention width of {cross}, the model's UNet has "
            f"{width}; pass the IP-Adapter made for this model (SD 1.x: 768, SD 2.x: 1024, SDXL: 2048)"
        )
    layers = cross_attention_layers(unet)
    ids = sorted({int(k.split(".", 1)[0]) for k in attn if k.endswith(("to_k_ip.weight", "to_v_ip.weight"))})
    if len(ids) != len(layers):
        raise ModelFolderError(
            f"--ip-adapter {path}: it has image attention for {len(ids)} layers, the model's UNet has {len(layers)} "
            "cross-attention layers; pass the IP-Adapter made for this model"
        )
    for key_id, (name, hidden) in zip(range(1, 2 * len(layers), 2), layers.items()):
        for kind in ("to_k_ip", "to_v_ip"):
            shape = attn.get(f"{key_id}.{kind}.weight")
            if shape != [hidden, width]:
                raise ModelFolderError(
                    f"--ip-adapter {path}: ip_adapter.{key_id}.{kind}.weight has shape {shape}, the UNet's layer "
                    f"{name} needs {[hidden, width]}; pass the IP-Adapter made for this model"
                )
    return tuple(layers)


def cross_attention_layers(unet: dict[str, Any]) -> dict[str, int]:
    """The UNet's cross-attention processor names -> their hidden width, in diffusers' ``attn_processors`` order
    (a UNet made on the meta device from the config: no weights are read)."""
    import torch
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in unet.items() if not k.startswith("_")}
    with torch.device("meta"):
        model = UNet2DConditionModel.from_config(config)
    channels = list(unet["block_out_channels"])
    layers = {}
    for name in model.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name.split(".")[1])]
        else:
            hidden = channels[int(name.split(".")[1])]
        layers[name] = int(hidden)
    return layers


def _encoder_config(path: Path) -> dict[str, Any]:
    config_path = path / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelFolderError(
            f"--image-encoder {path}: cannot read {config_path} ({err}); pass a CLIPVisionModelWithProjection folder"
        ) from err
    architectures = config.get("architectures") or []
    if ENCODER_CLASS not in architectures:
        raise ModelFolderError(
            f"--image-encoder {path}: its config.json describes {architectures}, not a {ENCODER_CLASS}"
        )
    if not any(p.suffix in (".safetensors", ".bin") for p in path.iterdir() if p.is_file()):
        raise ModelFolderError(
            f"--image-encoder {path}: no weights (.safetensors or .bin) beside its config.json"
        )
    return config


def _check_encoder(adapter: IPAdapter, encoder: dict[str, Any], path: Path) -> None:
    """The projection's input width must be what the encoder gives it."""
    gives = (
        encoder.get("projection_dim")
        if adapter.projection == "ImageProjection"
        else encoder.get("hidden_size")
    )
    if gives != adapter.image_embed_dim:
        what = "image_embeds" if adapter.projection == "ImageProjection" else "hidden states"
        raise ModelFolderError(
            f"--image-encoder {path}: its {what} are {gives} wide, the IP-Adapter {adapter.file} takes "
            f"{adapter.image_embed_dim}; pass the image encoder the adapter was trained with"
        )


# ---- the torch side: the modules the build exports -------------------------------------------------
def read_state_dict(path: Path) -> dict[str, dict[str, Any]]:
    """The file as diffusers' ``load_ip_adapter`` reads a .safetensors one: ``{"image_proj": ..., "ip_adapter": ...}``."""
    from safetensors import safe_open

    state: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for key in f.keys():
            for group in state:
                if key.startswith(f"{group}."):
                    state[group][key.removeprefix(f"{group}.")] = f.get_tensor(key).float()
    return state


def load_unet_with_adapter(unet: Any, adapter: IPAdapter) -> Any:
    """``unet`` with the adapter loaded by diffusers (``_load_ip_adapter_weights``), its projection replaced by
    identities: the exported UNet takes the projected image tokens (the ``image_projection`` engine's output)."""
    import torch
    from diffusers.models.embeddings import MultiIPAdapterImageProjection

    unet._load_ip_adapter_weights([read_state_dict(adapter.file)], low_cpu_mem_usage=False)
    unet.encoder_hid_proj = MultiIPAdapterImageProjection([torch.nn.Identity()])
    return unet


def load_projection(adapter: IPAdapter) -> Any:
    """The projection module, converted from the file by diffusers' own ``_convert_ip_adapter_image_proj_to_diffusers``."""
    from types import SimpleNamespace

    import torch
    from diffusers import UNet2DConditionModel

    owner = SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)
    convert = UNet2DConditionModel._convert_ip_adapter_image_proj_to_diffusers
    return convert(owner, read_state_dict(adapter.file)["image_proj"], low_cpu_mem_usage=False)
