"""``Bundle``: an engine bundle folder (``engines/NAME``) opened, with its typed manifest.

It answers what the bundle holds (model type, component records, their files) and refuses, with the
``build-engine`` command that fixes it, a pipeline that needs a component the bundle lacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sdrt.runtime.errors import BundleError, BundleNotFoundError

from . import swap
from .manifest import Manifest, read_manifest
from .records import ComponentRecord


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest

    @property
    def model_type(self) -> str:
        return self.manifest.model_type

    @property
    def components(self) -> dict[str, ComponentRecord]:
        return self.manifest.components

    def record(self, name: str) -> ComponentRecord:
        if name not in self.components:
            raise BundleError(
                f"{self.path}: the bundle has no {name} engine (it has {', '.join(sorted(self.components)) or 'none'}); "
                f"rebuild it with build-engine including --components {name}"
            )
        return self.components[name]

    def require(self, names: tuple[str, ...], pipeline: str) -> None:
        """Raise naming the components ``pipeline`` needs that the bundle lacks (record or file)."""
        missing = [n for n in names if n not in self.components]
        if missing:
            raise BundleError(
                f"{self.path}: the bundle has no {', '.join(missing)} engine, which {pipeline} needs (it has "
                f"{', '.join(sorted(self.components)) or 'none'}); rebuild it with build-engine including "
                f"--components {' '.join(names)}"
            )
        for name in names:
            record = self.components[name]
            graphs = [f for f in (record.ort.file if record.ort else None, record.onnx) if f]
            if not any((self.path / f).is_file() for f in graphs):
                raise BundleNotFoundError(
                    f"{self.path}: {' and '.join(graphs)} (the {name} engine listed in manifest.json) "
                    f"{'is' if len(graphs) == 1 else 'are'} missing; rebuild the bundle with build-engine"
                )


def open_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read ``path/manifest.json`` (clear errors for a missing folder or file, or another format version).

    A bundle whose replacement was interrupted (a crash between the swap's renames) is repaired first,
    unless a build into it is running.
    """
    path = Path(path)
    if not path.is_dir() and (swap.old_folders(path) or swap.complete_temps(path)):
        with swap.output_lock(path, wait=False) as free:
            if free:
                swap.recover_swap(path)
    return Bundle(path, read_manifest(path))
