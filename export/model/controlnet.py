"""``build-engine --controlnet DIR[:NAME]``: diffusers ``ControlNetModel`` folders taken in as parts of the
model (``controlnet``, ``controlnet_1``... in the order given, or ``controlnet_NAME``), each exported as
its own component; the UNet is then built to take their residuals (``UNet.graph(controlnet_residuals=)``)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from sdrt.export.errors import ModelFolderError
from sdrt.runtime.bundle.manifest import ControlNetInfo
from sdrt.runtime.components.controlnet import residual_levels
from sdrt.runtime.families import CONTROLNET, families_with

from .folder import SINGLE_FILE_SUFFIXES, WEIGHT_SUFFIXES, ModelFolder

_NAME = re.compile(r"^[a-z0-9_]+$")
_MATCHING = (
    "cross_attention_dim",
    "block_out_channels",
    "layers_per_block",
    "in_channels",
    "addition_embed_type",
    "projection_class_embeddings_input_dim",
)


def split_controlnet(spec: str) -> tuple[Path, str | None]:
    """``DIR[:NAME]`` -> (DIR, NAME or None); NAME: lower-case letters, digits and underscores."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and _NAME.match(tail):
        return Path(head), tail
    if sep and head and "/" not in tail and "\\" not in tail:
        raise ModelFolderError(
            f"--controlnet {spec}: the name {tail!r} must be lower-case letters, digits and underscores"
        )
    return Path(spec), None


def add_controlnets(folder: ModelFolder, specs: list[str]) -> ModelFolder:
    """``folder`` with one ``controlnet*`` part per ``DIR[:NAME]``, checked before anything is loaded."""
    if not folder.family.takes(CONTROLNET):
        takers = ", ".join(f.title for f in families_with(CONTROLNET))
        raise ModelFolderError(
            f"--controlnet: {folder.path} is a {folder.model_type} model; sdrt exports ControlNets for "
            f"{takers} text-to-image models"
        )
    parts, classes, configs = dict(folder.parts), dict(folder.classes), dict(folder.configs)
    for index, spec in enumerate(specs):
        path, name = split_controlnet(spec)
        part = f"controlnet_{name}" if name else ("controlnet" if index == 0 else f"controlnet_{index}")
        if part in classes:
            raise ModelFolderError(f"--controlnet {spec}: the name {part!r} is taken twice; name them apart")
        config = _controlnet_config(path, spec)
        _check_matches_unet(config, folder.configs["unet"], spec)
        parts[part], classes[part], configs[part] = path.resolve(), ("diffusers", "ControlNetModel"), config
    return dataclasses.replace(folder, parts=parts, classes=classes, configs=configs)


def controlnet_infos(folder: ModelFolder) -> dict[str, ControlNetInfo]:
    """The manifest's ``controlnets``: component name -> its folder and guess-mode flag, in build order."""
    return {
        part: ControlNetInfo(
            str(folder.parts[part]), bool(folder.configs[part].get("global_pool_conditions", False))
        )
        for part, (_, cls) in folder.classes.items()
        if cls == "ControlNetModel"
    }


def _controlnet_config(path: Path, spec: str) -> dict[str, Any]:
    if path.is_file() and path.name.endswith(SINGLE_FILE_SUFFIXES):
        raise ModelFolderError(
            f"--controlnet {spec} is a single file; build-engine takes a ControlNetModel folder: convert it once "
            f"with python -c \"from diffusers import ControlNetModel; ControlNetModel.from_single_file('{path}')"
            f".save_pretrained('{path.with_suffix('')}')\" and pass that folder"
        )
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelFolderError(
            f"--controlnet {spec}: no {config_path}; pass a diffusers ControlNetModel folder"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"--controlnet {spec}: cannot read {config_path}: {err}") from err
    found = config.get("_class_name") if isinstance(config, dict) else None
    if found != "ControlNetModel":
        raise ModelFolderError(f"--controlnet {spec}: config.json describes {found!r}, not a ControlNetModel")
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir() if p.is_file()):
        raise ModelFolderError(
            f"--controlnet {spec}: no weights (.safetensors or .bin) beside its config.json"
        )
    if config.get("addition_embed_type") not in (None, "text_time"):
        raise ModelFolderError(
            f"--controlnet {spec}: addition_embed_type {config['addition_embed_type']!r} is not one sdrt "
            "exports (SD 1.x/2.x ControlNets have none, SDXL's text_time)"
        )
    return config


def _check_matches_unet(config: dict[str, Any], unet: dict[str, Any], spec: str) -> None:
    """The ControlNet's residuals must fit the UNet: the same text width, levels and channels."""
    for key in _MATCHING:
        mine, theirs = config.get(key), unet.get(key)
        if json.dumps(mine) != json.dumps(theirs):
            raise ModelFolderError(
                f"--controlnet {spec}: its {key} is {mine}, the model's UNet has {theirs}; pass a ControlNet "
                "made for this model family"
            )
    if len(residual_levels(config)) != len(residual_levels(unet)):
        raise ModelFolderError(f"--controlnet {spec}: its down residuals do not match the UNet's down blocks")
