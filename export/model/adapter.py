"""``build-engine --adapter DIR[:NAME]``: diffusers ``T2IAdapter`` folders taken in as parts of the model
(``adapter``, ``adapter_1``... in the order given, or ``adapter_NAME``), each exported as its own component;
the UNet is then built to take their features (``UNet.graph(adapter_residuals=N)``). Each adapter's feature
maps are checked against the UNet's blocks before anything is loaded, so an adapter made for another model is
refused with nothing built."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from sdrt.export.errors import ModelFolderError
from sdrt.runtime.bundle.manifest import AdapterInfo
from sdrt.runtime.components.adapter import adapter_features, feature_levels, intrablock_levels, vae_scale
from sdrt.runtime.families import ADAPTER, families_with

from .folder import SINGLE_FILE_SUFFIXES, WEIGHT_SUFFIXES, ModelFolder

_NAME = re.compile(r"^[a-z0-9_]+$")
_BLOCKS = ("CrossAttnDownBlock2D", "DownBlock2D")


def split_adapter(spec: str) -> tuple[Path, str | None]:
    """``DIR[:NAME]`` -> (DIR, NAME or None); NAME: lower-case letters, digits and underscores."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and _NAME.match(tail):
        return Path(head), tail
    if sep and head and "/" not in tail and "\\" not in tail:
        raise ModelFolderError(
            f"--adapter {spec}: the name {tail!r} must be lower-case letters, digits and underscores"
        )
    return Path(spec), None


def add_adapters(folder: ModelFolder, specs: list[str]) -> ModelFolder:
    """``folder`` with one ``adapter*`` part per ``DIR[:NAME]``, each checked against the UNet first."""
    if not folder.family.takes(ADAPTER):
        takers = ", ".join(f.title for f in families_with(ADAPTER))
        raise ModelFolderError(
            f"--adapter: {folder.path} is a {folder.model_type} model; sdrt exports T2I-Adapters for "
            f"{takers} text-to-image models"
        )
    parts, classes, configs = dict(folder.parts), dict(folder.classes), dict(folder.configs)
    shapes: list[tuple[int, int]] | None = None
    for index, spec in enumerate(specs):
        path, name = split_adapter(spec)
        part = f"adapter_{name}" if name else ("adapter" if index == 0 else f"adapter_{index}")
        if part in classes:
            raise ModelFolderError(f"--adapter {spec}: the name {part!r} is taken twice; name them apart")
        config = _adapter_config(path, spec)
        levels = _check_fits_unet(config, folder.configs, spec, path / "config.json")
        if shapes is not None and levels != shapes:
            raise ModelFolderError(
                f"--adapter {spec}: its feature maps {levels} (channels, level) differ from the first adapter's "
                f"{shapes}; adapters used together (MultiAdapter) must give the same shapes"
            )
        shapes = levels
        parts[part], classes[part], configs[part] = path.resolve(), ("diffusers", "T2IAdapter"), config
    return dataclasses.replace(folder, parts=parts, classes=classes, configs=configs)


def adapter_infos(folder: ModelFolder) -> dict[str, AdapterInfo]:
    """The manifest's ``adapters``: component name -> its folder and downscale factor, in build order."""
    return {
        part: AdapterInfo(str(folder.parts[part]), adapter_features(folder.configs[part])[0][1])
        for part, (_, cls) in folder.classes.items()
        if cls == "T2IAdapter"
    }


def adapter_feature_count(folder: ModelFolder) -> int | None:
    """How many feature maps the bundle's adapters give (the UNet's adapter inputs); None without adapters."""
    counts = [
        len(adapter_features(folder.configs[p])) for p, (_, c) in folder.classes.items() if c == "T2IAdapter"
    ]
    return max(counts) if counts else None


def _adapter_config(path: Path, spec: str) -> dict[str, Any]:
    if path.is_file() and path.name.endswith(SINGLE_FILE_SUFFIXES):
        raise ModelFolderError(
            f"--adapter {spec} is a single file; build-engine takes a diffusers T2IAdapter folder (config.json "
            "and weights), as T2IAdapter.save_pretrained writes it"
        )
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelFolderError(f"--adapter {spec}: no {config_path}; pass a diffusers T2IAdapter folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"--adapter {spec}: cannot read {config_path}: {err}") from err
    found = config.get("_class_name") if isinstance(config, dict) else None
    if found != "T2IAdapter":
        raise ModelFolderError(f"--adapter {spec}: {config_path} describes {found!r}, not a T2IAdapter")
    if config.get("adapter_type", "full_adapter") not in ("full_adapter", "full_adapter_xl", "light_adapter"):
        raise ModelFolderError(
            f"--adapter {spec}: {config_path} has adapter_type {config['adapter_type']!r}; diffusers' T2IAdapter "
            "is full_adapter, full_adapter_xl or light_adapter"
        )
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir() if p.is_file()):
        raise ModelFolderError(f"--adapter {spec}: no weights (.safetensors or .bin) beside its config.json")
    return config


def _check_fits_unet(
    config: dict[str, Any], configs: Any, spec: str, config_path: Path
) -> list[tuple[int, int]]:
    """Each feature map must have the channels and size of the UNet's block it is added to (diffusers adds
    feature i after down block i, then one more after the mid block where its shape fits)."""
    unet = configs["unet"]
    types = list(unet.get("down_block_types") or [])
    if any(t not in _BLOCKS for t in types):
        raise ModelFolderError(
            f"--adapter {spec}: the model's UNet has down blocks {types}; sdrt adapts {_BLOCKS}"
        )
    levels = feature_levels(config, vae_scale(configs))
    slots = intrablock_levels(unet)
    if len(levels) > len(slots) or any(level != slot for level, slot in zip(levels, slots)):
        wanted = ", ".join(f"{c} channels at 1/{2**lv}" for c, lv in slots)
        given = ", ".join(
            f"{c} channels at 1/{2**lv}" if lv >= 0 else f"{c} channels at another scale" for c, lv in levels
        )
        raise ModelFolderError(
            f"--adapter {spec}: {config_path} gives feature maps of {given} the latent size, but this "
            f"{configs.get('unet', {}).get('_class_name', 'UNet')} takes {wanted} (its down blocks, then the mid "
            "block); the adapter was made for another model: pass a T2I-Adapter of this model family"
        )
    return levels
