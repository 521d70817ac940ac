"""Which engine runs a bundle's component: the provider (``"auto"`` resolved) and the file it loads.

Providers: ``"cpu"`` (ONNX Runtime, NumPy arrays), ``"cuda"`` (ONNX Runtime CUDA, CuPy arrays),
``"tensorrt"`` (TensorRT plans, CuPy arrays), and ``"auto"``: the fastest one that is installed and that
the bundle has engines for.
"""

from __future__ import annotations

import logging
from types import ModuleType

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError

from .base import Engine
from .providers import GPU_PROVIDERS, PROVIDERS, select_provider

logger = logging.getLogger(__name__)


def resolve_provider(provider: str, bundle: Bundle, names: tuple[str, ...]) -> str:
    """``"auto"`` -> the best installed provider the bundle has engines for; a named one is checked."""
    provider = provider.lower()
    if provider == "tensorrt" and not bundle.has_plans(names):
        raise BundleError(
            f"{bundle.path}: the bundle has no TensorRT plans for {', '.join(names)}; rebuild it with "
            "build-engine --backend tensorrt, or use provider='cpu' / 'cuda'"
        )
    if provider == "openvino" and not bundle.has_openvino(names):
        raise BundleError(
            f"{bundle.path}: the bundle has no OpenVINO IR for {', '.join(names)}; rebuild it with "
            f"build-engine {bundle.manifest.source.path} -o {bundle.path} --backend openvino, or use provider='cpu'"
        )
    built = {"tensorrt": bundle.has_plans(names), "openvino": bundle.has_openvino(names)}
    return select_provider(provider, tuple(p for p in PROVIDERS if built.get(p, True)))


def array_module(provider: str) -> ModuleType:
    """NumPy for the CPU providers, CuPy for the GPU ones."""
    if provider not in GPU_PROVIDERS:
        import numpy

        return numpy
    import cupy

    return cupy


def open_engine(bundle: Bundle, name: str, provider: str) -> Engine:
    """The engine of component ``name`` for ``provider`` (called with named inputs, returns named outputs)."""
    record = bundle.record(name)
    if provider == "tensorrt":
        from .tensorrt.engine import TrtEngine

        return TrtEngine.from_bundle(bundle, name)
    if provider == "openvino":
        from .openvino.engine import OpenVinoEngine

        return OpenVinoEngine.from_bundle(bundle, name)
    from .ort.engine import OrtEngine

    path = bundle.path / record.graph_file(provider)
    if not path.is_file():
        path = bundle.path / record.onnx
    logger.debug("%s: loading %s on %s", name, path, provider)
    return OrtEngine(path, provider=provider, name=name)
