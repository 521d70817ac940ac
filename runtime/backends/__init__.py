"""The backends: one row per backend, in the order ``provider="auto"`` tries them.

Adding a backend is a ``Backend`` subclass (``base.py``) and a row here; see ARCHITECTURE.md. Names and
aliases resolve through :func:`get_backend`: build's ``--backend onnx|ort|openvino|tensorrt`` (``ort``
with ``--device cpu|cuda``) and run's ``provider="cpu"|"cuda"|"openvino"|"tensorrt"`` name the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sdrt.runtime.errors import InputError, ProviderNotAvailableError

from .base import Backend
from .openvino import OpenVino
from .ort import OnnxGraphs, OrtCpu, OrtCuda
from .tensorrt import TensorRt

logger = logging.getLogger(__name__)

AUTO = "auto"
BACKENDS: dict[str, Backend] = {
    backend.name: backend for backend in (TensorRt(), OrtCuda(), OpenVino(), OrtCpu(), OnnxGraphs())
}

__all__ = ["AUTO", "BACKENDS", "Backend", "backend_names", "get_backend", "select_backend"]


def backend_names(build: bool = False) -> list[str]:
    """Every name and alias (``build``: with the build spellings shared by devices, ``ort``)."""
    names = [n for b in BACKENDS.values() for n in (b.name, *b.aliases)]
    shared = [b.build_alias for b in BACKENDS.values() if build and b.build_alias]
    return list(dict.fromkeys(names + shared))


def get_backend(name: str, device: str | None = None) -> Backend:
    """The backend ``name`` names (its name or an alias); a build spelling shared by devices (``ort``)
    takes the one for ``device``. An unknown name is an InputError listing the names."""
    key = name.lower()
    for backend in BACKENDS.values():
        if key == backend.name or key in backend.aliases:
            return backend
    for backend in BACKENDS.values():
        if key == backend.build_alias and backend.device == (device or "cpu"):
            return backend
    raise InputError(f"unknown provider {name!r}: use one of {', '.join(backend_names())} or {AUTO!r}")


def select_backend(
    requested: str = AUTO,
    candidates: Iterable[str] | None = None,
    available: Callable[[str], bool] | None = None,
) -> Backend:
    """``"auto"`` -> the first available backend among ``candidates`` (registry order); a named one is
    returned when available, else a ``ProviderNotAvailableError`` names the extra to install.
    ``available`` replaces the backends' own probes (by name)."""
    probe = available or (lambda name: BACKENDS[name].available())
    if requested.lower() != AUTO:
        backend = get_backend(requested)
        if not probe(backend.name):
            raise ProviderNotAvailableError(backend.unavailable_message())
        return backend
    allowed = set(BACKENDS) if candidates is None else {get_backend(c).name for c in candidates}
    for backend in BACKENDS.values():
        if backend.auto and backend.name in allowed and probe(backend.name):
            logger.info("provider 'auto' -> %r", backend.name)
            return backend
    raise ProviderNotAvailableError(
        f"no provider among {sorted(allowed)} is available: pip install 'sdrt[cpu]' "
        "(or 'sdrt[cuda]' / 'sdrt[tensorrt]' on a CUDA machine)"
    )
