"""Opening an engine bundle (``engines/NAME``): its manifest, and one engine per component for a provider.

Providers: ``"cpu"`` (ONNX Runtime, NumPy arrays), ``"cuda"`` (ONNX Runtime CUDA, CuPy arrays),
``"tensorrt"`` (TensorRT plans, CuPy arrays), and ``"auto"``: the fastest one that is installed and that
the bundle has engines for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    """A bundle folder and its manifest (a plain dict, as written by build-engine)."""

    path: Path
    manifest: dict[str, Any]

    @property
    def model_type(self) -> str:
        return str(self.manifest.get("model_type", ""))

    @property
    def components(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest.get("components") or {})

    def require(self, names: tuple[str, ...], pipeline: str) -> None:
        """Raise naming the components ``pipeline`` needs that the bundle lacks (record or file)."""
        missing = [n for n in names if n not in self.components]
        if missing:
            raise ValueError(
                f"{self.path}: the bundle has no {', '.join(missing)} engine, which {pipeline} needs (it has "
                f"{', '.join(sorted(self.components)) or 'none'}); rebuild it with build-engine including "
                f"--components {' '.join(names)}"
            )
        for name in names:
            record = self.components[name]
            files = [f for f in ((record.get("ort") or {}).get("file"), record.get("onnx")) if f]
            if files and not any((self.path / f).is_file() for f in files):
                raise FileNotFoundError(
                    f"{self.path}: {' and '.join(files)} (the {name} engine listed in manifest.json) "
                    f"{'is' if len(files) == 1 else 'are'} missing; rebuild the bundle with build-engine"
                )


def open_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read ``manifest.json`` (clear errors for a missing folder/file or a newer format)."""
    from .manifest import load_manifest

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"engine bundle {str(path)!r} does not exist; make one with: build-engine MODEL_DIR -o {path}"
        )
    return Bundle(path, manifest_dict(load_manifest(path)))


def manifest_dict(manifest: Any) -> dict[str, Any]:
    """The manifest as a plain dict, whatever form ``load_manifest`` returns it in."""
    if isinstance(manifest, Mapping):
        return dict(manifest)
    for attr in ("to_dict", "as_dict"):
        if callable(getattr(manifest, attr, None)):
            return dict(getattr(manifest, attr)())
    for attr in ("data", "raw"):
        if isinstance(getattr(manifest, attr, None), Mapping):
            return dict(getattr(manifest, attr))
    raise TypeError(f"cannot read a manifest of type {type(manifest).__name__}")


def has_plans(bundle: Bundle, names: tuple[str, ...]) -> bool:
    return all(bundle.components.get(n, {}).get("plans") for n in names)


def resolve_provider(provider: str, bundle: Bundle, names: tuple[str, ...]) -> str:
    """``"auto"`` -> the best installed provider the bundle has engines for; a named one is checked."""
    from sdrt.runtime.engines.providers import PROVIDERS, select_provider

    provider = provider.lower()
    if provider == "tensorrt" and not has_plans(bundle, names):
        raise ValueError(
            f"{bundle.path}: the bundle has no TensorRT plans for {', '.join(names)}; rebuild it with "
            "build-engine --backend tensorrt, or use provider='cpu' / 'cuda'"
        )
    candidates = tuple(p for p in PROVIDERS if p != "tensorrt" or has_plans(bundle, names))
    return select_provider(provider, candidates)


def array_module(provider: str) -> ModuleType:
    if provider == "cpu":
        import numpy

        return numpy
    import cupy

    return cupy


def open_engine(bundle: Bundle, name: str, provider: str) -> Any:
    """The engine of component ``name`` for ``provider`` (called with named inputs, returns named outputs)."""
    record = bundle.components[name]
    if provider == "tensorrt":
        from sdrt.runtime.engines.tensorrt.engine import TrtEngine

        return TrtEngine.from_bundle(bundle.path, name, manifest=bundle.manifest)
    from sdrt.runtime.engines.ort.engine import OrtEngine

    ort = record.get("ort") or {}
    ort_provider = ort.get("provider", "cpu")
    if ort.get("file") and ort_provider == provider and (bundle.path / ort["file"]).is_file():
        path = bundle.path / ort["file"]
    else:
        path = bundle.path / record["onnx"]
    logger.debug("%s: loading %s on %s", name, path, provider)
    return OrtEngine(path, provider=provider, name=name)
