"""``build-engine --vae``: export another VAE in place of the model's own (as diffusers'
``from_pretrained(MODEL, vae=AutoencoderKL.from_pretrained(VAE))``), e.g. ``sd-vae-ft-mse``: a diffusers
folder, or a single ``.safetensors`` file in the original layout (read by diffusers' ``from_single_file``);
or a tiny VAE (``AutoencoderTiny``: TAESD for SD 1.x/2.x, TAESDXL for SDXL), exported in the same places."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

from sdrt.export.errors import ModelFolderError

from .folder import SINGLE_FILE_SUFFIXES, WEIGHT_SUFFIXES, ModelFolder, with_parts_saved

VAE_CLASSES = ("AutoencoderKL", "AutoencoderTiny")  # the folders --vae takes
TINY_VAE_HINT = "a tiny VAE made for this model family (TAESD for SD 1.x/2.x, TAESDXL for SDXL)"


def swap_vae(folder: ModelFolder, vae: str | Path) -> ModelFolder:
    """``folder`` reading its ``vae`` part from ``vae``: an ``AutoencoderKL`` or ``AutoencoderTiny`` folder
    (config.json and weights), or a diffusers model folder whose ``vae/`` is taken. Checked before anything is
    loaded."""
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
    check_fits(path, config, folder.configs["vae"])
    return dataclasses.replace(
        folder,
        classes={**folder.classes, "vae": ("diffusers", config["_class_name"])},
        configs={**folder.configs, "vae": config},
        parts={**folder.parts, "vae": path.resolve()},
    )


def add_preview_vae(folder: ModelFolder, vae: str | Path) -> ModelFolder:
    """``folder`` with a ``vae_preview`` part: the ``AutoencoderTiny`` folder ``vae`` (or a model folder's
    ``vae/``), which must read the latents of the model's VAE."""
    path = Path(vae)
    if "vae" not in folder.classes:
        raise ModelFolderError(
            f"--preview-vae {path}: {folder.path} is a {folder.model_type} model, which has no VAE"
        )
    path, config = vae_folder(path, option="--preview-vae")
    if config["_class_name"] != "AutoencoderTiny":
        raise ModelFolderError(
            f"--preview-vae {path} is an {config['_class_name']}, which decodes no faster than the model's own; "
            f"pass {TINY_VAE_HINT}"
        )
    check_fits(path, config, folder.configs["vae"], option="--preview-vae")
    return dataclasses.replace(
        folder,
        classes={**folder.classes, "vae_preview": ("diffusers", "AutoencoderTiny")},
        configs={**folder.configs, "vae_preview": config},
        parts={**folder.parts, "vae_preview": path.resolve()},
    )


def check_fits(path: Path, config: dict, ours: dict, option: str = "--vae") -> None:
    """The VAE at ``path`` (``config``) reads and writes the latents of the model whose VAE config is ``ours``:
    the same channels and the same pixels per latent pixel."""
    fix = TINY_VAE_HINT if config["_class_name"] == "AutoencoderTiny" else "a VAE made for this model family"
    for key, default in {"latent_channels": 4, "in_channels": 3, "out_channels": 3}.items():
        if config.get(key, default) != ours.get(key, default):
            raise ModelFolderError(
                f"{option} {path}: its {key} is {config.get(key, default)}, the model's VAE has "
                f"{ours.get(key, default)}; pass {fix}"
            )
    theirs, own = _pixels_per_latent(config), _pixels_per_latent(ours)
    if theirs != own:
        raise ModelFolderError(
            f"{option} {path}: it makes {theirs} image pixels per latent pixel, the model's VAE {own}; pass {fix}"
        )


def _pixels_per_latent(config: dict) -> int:
    """As diffusers' pipelines count it (``2 ** (len(vae.config.block_out_channels) - 1)``); an
    ``AutoencoderTiny`` registers its decoder's channels as ``block_out_channels``."""
    blocks = config.get("block_out_channels") or config.get("decoder_block_out_channels") or (0,) * 4
    return 2 ** (len(blocks) - 1)


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


def vae_folder(vae: str | Path, option: str = "--vae") -> tuple[Path, dict]:
    """(the VAE folder ``--vae`` names: itself, or a model folder's ``vae/``; its config), checked: a config of
    one of ``VAE_CLASSES``, and weights beside it."""
    path = Path(vae)
    if (path / "model_index.json").is_file():
        path = path / "vae"
    return path, _vae_config(path, option)


def _vae_config(path: Path, option: str) -> dict:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelFolderError(
            f"{option} {path}: no config.json there; pass a diffusers AutoencoderKL or AutoencoderTiny folder"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{option} {path}: cannot read {config_path}: {err}") from err
    if not isinstance(config, dict) or config.get("_class_name") not in VAE_CLASSES:
        found = config.get("_class_name") if isinstance(config, dict) else None
        raise ModelFolderError(
            f"{option} {path}: config.json describes {found!r}, not an AutoencoderKL (nor an AutoencoderTiny)"
        )
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir() if p.is_file()):
        raise ModelFolderError(f"{option} {path}: no weights (.safetensors or .bin) beside its config.json")
    return config
