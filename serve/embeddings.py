"""Textual-inversion embeddings from ``sdrt serve --embeddings-dir DIR``, loaded on each replica at start.

As in A1111, a file's stem is its trigger word: ``DIR/shapes-style.safetensors`` is used by writing
``shapes-style`` in a prompt. A file that cannot be loaded (not an embedding, another model's width, a
pickle) is listed under ``skipped`` with the reason; the replica serves on. ``/sdapi/v1/embeddings``
answers in A1111's shape (``modules/api/models.py``: ``EmbeddingsResponse``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sdrt.runtime.errors import SdrtError
from sdrt.runtime.text.embeddings import textual_inversion_vectors

log = logging.getLogger("ray.serve")

SUFFIXES = (".safetensors", ".pt", ".bin")


def load_embeddings(pipe: Any, folder: str | None) -> dict[str, dict[str, Any]]:
    """Load every embedding file under ``folder`` into ``pipe``; A1111's ``{"loaded": ..., "skipped": ...}``."""
    listed: dict[str, dict[str, Any]] = {"loaded": {}, "skipped": {}}
    if not folder:
        return listed
    for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        name = path.stem
        entry: dict[str, Any] = {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None}
        if name in listed["loaded"] or name in listed["skipped"]:
            listed["skipped"][f"{name} ({path.name})"] = {**entry, "reason": f"{name} is already taken"}
            continue
        try:
            key = pipe.embedding_loader.embedding_slots[0][2]
            _, vectors = textual_inversion_vectors(path, name, key=key)
            pipe.load_textual_inversion(str(path), token=name)
        except (SdrtError, OSError, ValueError) as error:
            log.warning("embedding %s skipped: %s", path, error)
            listed["skipped"][name] = {**entry, "shape": None, "vectors": None, "reason": str(error)}
            continue
        listed["loaded"][name] = {**entry, "shape": int(vectors.shape[1]), "vectors": int(vectors.shape[0])}
    return listed
