"""``build-engine --vae``: export another VAE in place of the model's own (as diffusers'
``from_pretrained(MODEL, vae=AutoencoderKL.from_pretrained(VAE))``), e.g. ``sd-vae-ft-mse``: a diffusers
folder, or a single ``.safetensors`` file in the original layout (read by diffusers' ``from_single_file``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

from sdrt.export.errors import ModelFolderError

from .folder import SINGLE_FILE_SUFFIXES, WEIGHT_SUFFIXES, ModelFolder, with_parts_saved


def swap_vae(folder: ModelFolder, vae: str | Path) -> ModelFolder:
    """``folder`` reading its ``vae`` part from ``vae``: an ``AutoencoderKL`` folder (config.json and
    weights), or a diffusers model folder whose ``vae/`` is taken. Checked before anything is loaded."""
    path = Path(vae)
    if "vae" not in folder.classes:
        raise ModelFolderError(
            f"--vae {path}: {folder.path} is a {folder.model_type} model, which has no VAE"
        )
    if path.is_file() and path.name.endswith(SINGLE_FILE_SUFFIXES):
        if path.suffix != ".safetensors":
            raise ModelFolderError(
                f"--vae {path} is a pickle, which runs code when loaded; pass the VAE as .safetensors (or as "
                "a diffusers AutoencoderKL folder)"
            )
        return dataclasses.replace(folder, vae_file=path.resolve())  # read with the model's VAE config
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


@contextlib.contextmanager
def vae_file_loaded(folder: ModelFolder) -> Iterator[ModelFolder]:
    """``folder`` reading its ``vae`` part from a scratch folder where the ``--vae`` single file (original
    layout, as sd-vae-ft-mse ships) is saved as diffusers' ``AutoencoderKL.from_single_file`` reads it with
    the model's own VAE config; ``folder`` itself when ``--vae`` is no single file."""
    if folder.vae_file is None:
        yield folder
        return
    from diffusers import AutoencoderKL

    try:
        vae = AutoencoderKL.from_single_file(str(folder.vae_file), config=str(folder.part_path("vae")))
    except Exception as error:  # noqa: BLE001 - safetensors', diffusers' and torch's own errors, said in one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFolderError(
            f"--vae {folder.vae_file}: diffusers cannot read it as this model's VAE ({reason})"
        ) from error
    _check_architecture(folder.vae_file, len(vae.state_dict()))
    with with_parts_saved(folder, {"vae": vae}, "sdrt-vae-") as changed:
        yield changed


_VAE_PARTS = ("encoder", "decoder", "quant_conv", "post_quant_conv")


def _check_architecture(file: Path, expected: int) -> None:
    """The file holds as many VAE weights as the model's VAE: diffusers reads the blocks the model's config
    names and drops the rest of another architecture's file behind one warning."""
    from safetensors import safe_open

    with safe_open(str(file), "np") as weights:
        keys = list(weights.keys())
    prefix = "first_stage_model."  # a whole checkpoint's VAE, as diffusers takes it
    if any(key.startswith(prefix) for key in keys):
        keys = [key[len(prefix) :] for key in keys if key.startswith(prefix)]
    found = sum(1 for key in keys if key.split(".", 1)[0] in _VAE_PARTS)
    if found != expected:
        raise ModelFolderError(
            f"--vae {file}: it holds {found} VAE weights where this model's VAE has {expected}, so it is another "
            "VAE architecture; pass a VAE made for this model family (as a diffusers folder, or its single file)"
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
