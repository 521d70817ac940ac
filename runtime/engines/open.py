"""Which engine runs a bundle's component: the provider (``"auto"`` resolved) and the file it loads.

Each provider is a backend (``sdrt.runtime.backends``): ``"auto"`` is the fastest one that is installed
and that the bundle has engines for.
"""

from __future__ import annotations

from types import ModuleType

from sdrt.runtime.backends import AUTO, BACKENDS, get_backend, select_backend
from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError

from .base import Engine


def resolve_provider(provider: str, bundle: Bundle, names: tuple[str, ...]) -> str:
    """``"auto"`` -> the best installed provider the bundle has engines for; a named one is checked."""
    if provider.lower() != AUTO:
        backend = get_backend(provider)
        if not backend.bundle_has(bundle, names):
            raise BundleError(backend.missing_message(bundle, names))
        return select_backend(backend.name).name
    built = [b.name for b in BACKENDS.values() if b.bundle_has(bundle, names)]
    return select_backend(AUTO, built).name


def array_module(provider: str) -> ModuleType:
    """NumPy for the CPU providers, CuPy for the GPU ones."""
    return get_backend(provider).array_module()


def open_engine(bundle: Bundle, name: str, provider: str) -> Engine:
    """The engine of component ``name`` for ``provider`` (called with named inputs, returns named outputs)."""
    return get_backend(provider).open_engine(bundle, name)
