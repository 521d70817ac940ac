"""Atomic bundle writing: build in a temporary sibling folder, then swap it in.

An interrupted build (exception, Ctrl-C, validation failure) removes the temporary folder and leaves
the previous bundle as it was, or no bundle. A crash (power, SIGKILL) at any point is repaired by the
next build or load (``sdrt.runtime.bundle.swap``): the swap is completed or rolled back, never lost.
The caller holds the output's lock (``swap.output_lock``) for the whole build.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from sdrt.runtime.bundle import swap
from sdrt.runtime.bundle.manifest import MANIFEST_NAME

from .errors import OutputError

log = logging.getLogger(__name__)


def check_output(target: Path) -> None:
    """Refuse an output that is a file, a folder of something else, or in a folder that cannot be written."""
    if target.exists() and not target.is_dir():
        raise OutputError(
            f"output {target} exists and is a file; pass a folder path with -o (e.g. engines/NAME)"
        )
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST_NAME).is_file():
        raise OutputError(
            f"output folder {target} exists, is not empty and is not an engine bundle (no {MANIFEST_NAME}); "
            f"refusing to replace it. Choose another -o folder or empty this one."
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create the output's parent folder {parent}: {err}; choose a writable -o"
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"output folder {parent} is not writable; choose a writable -o or fix its permissions"
        )


def _remove_unfinished(target: Path) -> None:
    """Working folders of builds that died before finishing (the lock says none is running)."""
    for stale in target.parent.glob(swap.temp_prefix(target) + "*"):
        if stale.is_dir() and not (stale / swap.COMPLETE).exists():
            log.info("removing %s left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)


class BundleWriter:
    """``with BundleWriter(target) as work:`` write into ``work``; on success it becomes ``target``."""

    def __init__(self, target: str | Path):
        self.target = Path(target)
        self.work: Path | None = None

    def __enter__(self) -> Path:
        check_output(self.target)
        _remove_unfinished(self.target)
        try:
            self.work = Path(tempfile.mkdtemp(prefix=swap.temp_prefix(self.target), dir=self.target.parent))
        except OSError as err:
            raise OutputError(f"cannot write in {self.target.parent}: {err}; choose a writable -o") from err
        return self.work

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.work is not None
        if exc_type is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            return
        try:
            self._swap()
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)
            raise

    def _swap(self) -> None:
        assert self.work is not None
        swap.swap_in(self.work, self.target)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system, no copy), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_files(old_bundle: Path, work: Path, files: list[str]) -> None:
    """Bring the files of a component taken over from the old bundle (those that exist) into ``work``."""
    for rel in files:
        if (old_bundle / rel).is_file():
            link_or_copy(old_bundle / rel, work / rel)


def carry_timing_cache(old_bundle: Path, work: Path) -> None:
    """Keep TensorRT's timing cache across builds."""
    cache = old_bundle / "timing.cache"
    if cache.is_file():
        link_or_copy(cache, work / "timing.cache")


def copy_tokenizer(src: Path, dst: Path) -> list[str]:
    """Copy a CLIP tokenizer folder (vocab.json, merges.txt, special tokens, configs).

    Folders saved by transformers 5 may hold only tokenizer.json: vocab.json and merges.txt are then
    written from its BPE model, so the runtime always finds them.
    """
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(src.iterdir()):
        if path.is_file() and path.suffix in (".json", ".txt"):
            shutil.copy2(path, dst / path.name)
            copied.append(path.name)
    fast = src / "tokenizer.json"
    if not (dst / "vocab.json").is_file() or not (dst / "merges.txt").is_file():
        if not fast.is_file():
            raise OutputError(f"tokenizer folder {src} has neither vocab.json/merges.txt nor tokenizer.json")
        model = json.loads(fast.read_text(encoding="utf-8"))["model"]
        (dst / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        (dst / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        copied += ["vocab.json", "merges.txt"]
    return sorted(set(copied))
