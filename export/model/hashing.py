"""Content hashes: of the source weights (recorded in the manifest) and of each component's build
inputs (weights + options + tool versions), which decide whether a re-run may skip a component."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.integrity import file_sha256


def files_sha256(files: list[Path], *, root: Path) -> str:
    """One sha256 over the files' names (relative to ``root``; ``folder/name`` for a file from elsewhere,
    such as a ``--vae`` folder or the text encoder saved with embeddings) and contents."""
    digest = hashlib.sha256()
    for path in sorted(files):
        path = Path(path)
        name = path.relative_to(root) if path.is_relative_to(root) else Path(path.parent.name, path.name)
        digest.update(str(name).encode())
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def json_sha256(data: Any) -> str:
    """sha256 of a JSON-serializable value in canonical form."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the tools whose output ends up in the bundle."""
    from importlib import metadata

    versions = {}
    for dist in ("sdrt", "torch", "diffusers", "transformers", "onnx", "onnxruntime", "onnxscript"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions
