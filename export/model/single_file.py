"""``build-engine FILE.safetensors``: a single-file checkpoint in the original (CompVis / A1111) layout,
loaded by diffusers' own single-file loader (its maintained key mapping) with ``config=`` a local
diffusers folder, saved as a diffusers folder in scratch space, and built from there like any folder.

Checked before the build: the file's kind (a pickle only with ``allow_pickle``), that it is
whole, and the config folder (given, or the one diffusers infers found in the local Hugging Face cache).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sdrt.export.errors import CheckpointError, OptionError

log = logging.getLogger(__name__)

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SCRATCH_PREFIX = ".sdrt-checkpoint-"
UNET_PREFIX = "model.diffusion_model."


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The single file a bundle was built from (the manifest's ``source.checkpoint``)."""

    path: Path
    bytes: int
    sha256: str
    config: Path  # the diffusers folder whose configs, tokenizers and scheduler were used

    def record(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "config": str(self.config),
        }


def is_single_file(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix.lower() in SAFE_SUFFIXES + PICKLE_SUFFIXES


@contextlib.contextmanager
def checkpoint_as_folder(
    model: str | Path,
    *,
    config: str | Path | None = None,
    allow_pickle: bool = False,
    scratch_dir: str | Path | None = None,
    vae: str | Path | None = None,
) -> Iterator[tuple[Path, Checkpoint | None]]:
    """(the diffusers folder to build from, the checkpoint it came from): ``model`` itself and ``None`` for a
    folder; for a single file, a scratch folder (under ``scratch_dir``, removed afterwards) that diffusers
    saved the checkpoint's pipeline into. With ``vae`` (``--vae``), that VAE is loaded instead of the file's,
    which may have none."""
    path = Path(model)
    if not is_single_file(path):
        if config is not None:
            raise OptionError(f"--config {config}: it is for single-file checkpoints, and {path} is not one")
        yield path, None
        return
    check_file(path, allow_pickle=allow_pickle)
    from sdrt.runtime.bundle.integrity import file_sha256

    from .checkpoint_pickle import unpickle_to_safetensors
    from .single_file_load import checkpoint_config, save_checkpoint_folder
    from .vae_swap import vae_folder

    with _scratch(scratch_dir) as scratch:
        readable = path
        if path.suffix.lower() in PICKLE_SUFFIXES:  # its tensors re-saved: diffusers never opens a pickle
            readable = unpickle_to_safetensors(path, Path(scratch) / "checkpoint.safetensors", check_layout)
        config_dir = checkpoint_config(path, config, readable=readable)
        checkpoint = Checkpoint(path.resolve(), path.stat().st_size, file_sha256(path), config_dir.resolve())
        folder = Path(scratch) / "model"
        vae_dir = vae_folder(vae)[0] if vae is not None and not Path(vae).is_file() else None  # a file: later
        save_checkpoint_folder(path, config_dir, folder, readable=readable, vae=vae_dir)
        yield folder, checkpoint


def _scratch(scratch_dir: str | Path | None) -> tempfile.TemporaryDirectory:
    """A scratch folder beside the bundle where its folder exists (the disk that takes the bundle takes the
    weights), else in the system's temporary folder; named with this process's id, so that the next
    conversion removes what a killed one left (gigabytes for a real model)."""
    parent = Path(scratch_dir) if scratch_dir is not None and Path(scratch_dir).is_dir() else None
    parent = parent or Path(tempfile.gettempdir())
    for stale in parent.glob(SCRATCH_PREFIX + "*"):
        pid = stale.name.removeprefix(SCRATCH_PREFIX).split("-")[0]
        if stale.is_dir() and pid.isdigit() and not _alive(int(pid)):
            log.info("removing %s left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def check_file(path: Path, *, allow_pickle: bool) -> None:
    """A ``.safetensors`` file whose header and size agree; a pickle only when ``allow_pickle``."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise CheckpointError(
                f"{path} is a pickle ({suffix}): loading one runs any code it holds. Convert it to .safetensors "
                "or, if you trust where it comes from, pass --allow-pickle"
            )
        log.warning("%s: loading a pickle (--allow-pickle); it can run code", path)
        return
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            keys = list(file.keys())
    except Exception as err:  # safetensors raises its own error kinds for a damaged header or a short file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is damaged or truncated ({reason}); download it again") from err
    check_layout(path, keys)


def check_layout(path: Path, keys: list[str]) -> None:
    """A whole checkpoint in the original layout has its UNet under ``model.diffusion_model.``; a LoRA, an
    embedding or a lone VAE (the usual mix-ups) has not."""
    if not keys:
        raise CheckpointError(f"{path} holds no tensors; it is not a model checkpoint")
    if not any(key.startswith(UNET_PREFIX) for key in keys):
        raise CheckpointError(
            f"{path} is not a whole Stable Diffusion checkpoint in the original layout: it has no "
            f"{UNET_PREFIX}* weights (its first is {sorted(keys)[0]!r}); a LoRA, an embedding or a VAE file? "
            "(--vae takes VAE folders, --textual-inversion embeddings)"
        )
