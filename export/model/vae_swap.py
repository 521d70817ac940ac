"""``build-engine --vae``: export another VAE in place of the model's own (as diffusers'
``from_pretrained(MODEL, vae=AutoencoderKL.from_pretrained(VAE))``), e.g. ``sd-vae-ft-mse``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sdrt.export.errors import ModelFolderError

from .folder import SINGLE_FILE_SUFFIXES, WEIGHT_SUFFIXES, ModelFolder


def swap_vae(folder: ModelFolder, vae: str | Path) -> ModelFolder:
    """``folder`` reading its ``vae`` part from ``vae``: an ``AutoencoderKL`` folder (config.json and
    weights), or a diffusers model folder whose ``vae/`` is taken. Checked before anything is loaded."""
    path = Path(vae)
    if "vae" not in folder.classes:
        raise ModelFolderError(
            f"--vae {path}: {folder.path} is a {folder.model_type} model, which has no VAE"
        )
    if path.is_file() and path.name.endswith(SINGLE_FILE_SUFFIXES):
        raise ModelFolderError(
            f"--vae {path} is a single file; build-engine takes a VAE folder: convert it once with "
            f"python -c \"from diffusers import AutoencoderKL; AutoencoderKL.from_single_file('{path}')"
            f".save_pretrained('{path.with_suffix('')}')\" and pass that folder"
        )
    path, config = vae_folder(path)
    ours = folder.configs["vae"]
    for key, default in {"latent_channels": 4, "in_channels": 3, "out_channels": 3}.items():
        if config.get(key, default) != ours.get(key, default):
            raise ModelFolderError(
                f"--vae {path}: its {key} is {config.get(key, default)}, the model's VAE has "
                f"{ours.get(key, default)}; pass a VAE made for this model family"
            )
    return dataclasses.replace(
        folder,
        configs={**folder.configs, "vae": config},
        parts={**folder.parts, "vae": path.resolve()},
    )


def vae_folder(vae: str | Path) -> tuple[Path, dict]:
    """(the ``AutoencoderKL`` folder ``--vae`` names: itself, or a model folder's ``vae/``; its config), checked:
    a config of that class, and weights beside it."""
    path = Path(vae)
    if (path / "model_index.json").is_file():
        path = path / "vae"
    return path, _vae_config(path)


def _vae_config(path: Path) -> dict:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelFolderError(f"--vae {path}: no config.json there; pass a diffusers AutoencoderKL folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"--vae {path}: cannot read {config_path}: {err}") from err
    if not isinstance(config, dict) or config.get("_class_name") != "AutoencoderKL":
        found = config.get("_class_name") if isinstance(config, dict) else None
        raise ModelFolderError(f"--vae {path}: config.json describes {found!r}, not an AutoencoderKL")
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir() if p.is_file()):
        raise ModelFolderError(f"--vae {path}: no weights (.safetensors or .bin) beside its config.json")
    return config
