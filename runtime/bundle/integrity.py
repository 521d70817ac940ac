"""Whether a bundle's files are the ones its manifest describes: each component records the size and
sha256 of its files; a rebuild and ``sdrt inspect --verify`` check the hashes, a load the sizes (and the hashes once per
build and machine, ``weights_check``)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from .records import ComponentRecord, FileRecord

_CHUNK = 1 << 20


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file (memoized on path, size and modification time within the process)."""
    stat = Path(path).stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def describe_files(bundle_dir: Path, record: ComponentRecord) -> dict[str, FileRecord]:
    """Size and sha256 of each file ``record`` points at that exists (those already recorded with the
    same size are not hashed again: a component taken over from the previous bundle keeps its hashes)."""
    files = {}
    for rel in record.files():
        path = bundle_dir / rel
        if not path.is_file():
            continue
        size = path.stat().st_size
        known = record.checksums.get(rel)
        files[rel] = known if known and known.bytes == size else FileRecord(size, file_sha256(path))
    return files


def file_problems(bundle_dir: Path, record: ComponentRecord, *, hashes: bool = False) -> list[str]:
    """What is wrong with the component's files on disk: missing, another size, (``hashes``) other bytes.

    A record without checksums (bundles from before they were recorded) is checked for presence only.
    """
    problems = []
    needed = [f for f in record.files() if not f.endswith(".onnx_data") or f in record.checksums]
    for rel in needed:
        path = bundle_dir / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
            continue
        known = record.checksums.get(rel)
        if known is None:
            continue
        size = path.stat().st_size
        if size != known.bytes:
            problems.append(f"{rel} has {size} bytes, the manifest says {known.bytes}")
        elif hashes and file_sha256(path) != known.sha256:
            problems.append(f"{rel} does not match its sha256 in the manifest")
    return problems
