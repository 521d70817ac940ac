"""What a cached ONNX Runtime graph was made from, and whether its files are still the ones saved.

``sources.json`` in each entry of ``<cache>/ort/`` holds the sha256 and size of the source graph (and
its ``.onnx_data``) and of the entry's own files. A load compares the sizes (a damaged entry is
optimized again); ``sdrt inspect --verify`` compares the hashes (:func:`entry_problems`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.integrity import file_sha256

log = logging.getLogger(__name__)

SOURCES = "sources.json"


def _describe(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _source_files(source: Path) -> list[Path]:
    return [f for f in (source, source.with_name(source.stem + ".onnx_data")) if f.is_file()]


def record_sources(entry: Path, source: Path) -> None:
    """Write ``entry/sources.json`` for the graph just saved into ``entry`` from ``source``."""
    try:
        record = {
            "source": {f.name: _describe(f) for f in _source_files(source)},
            "files": {f.name: _describe(f) for f in sorted(entry.iterdir()) if f.name != SOURCES},
        }
        (entry / SOURCES).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    except OSError as error:  # a full disk: the entry is still usable, --verify says it has no record
        log.info("cannot record the sources of %s (%s)", entry, error)


def _read(entry: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((entry / SOURCES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def entry_sizes_differ(entry: Path) -> bool:
    """Whether a file of ``entry`` has another size than recorded (cheap: run at every load)."""
    data = _read(entry)
    if data is None:
        return False  # cached before the record, or its record is unreadable: --verify says which
    for name, known in (data.get("files") or {}).items():
        path = entry / name
        if not path.is_file() or path.stat().st_size != known.get("bytes"):
            log.warning(
                "the cached graph %s was changed since it was saved (%s); optimizing again", entry, name
            )
            return True
    return False


def entry_problems(entry: Path, source: Path) -> list[str]:
    """What is wrong with ``entry``: no record, files changed, or made from other source bytes."""
    data = _read(entry)
    if data is None:
        return [f"{entry} has no readable {SOURCES} (cached before sdrt recorded hashes)"]
    problems = []
    for name, known in (data.get("files") or {}).items():
        path = entry / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != known.get("bytes") or file_sha256(path) != known.get("sha256"):
            problems.append(f"{path} does not match its sha256 in {SOURCES}")
    made_from = data.get("source") or {}
    now = {f.name: _describe(f) for f in _source_files(source)}
    if made_from != now:
        problems.append(f"{entry} was made from other bytes than {source}")
    return problems
