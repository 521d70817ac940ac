"""Providers: which backends are installed, "auto" choice, and clear errors naming the extra to install.

``provider`` names a backend (``sdrt.runtime.backends``: what each one is, its probe, its extra);
these are the import helpers the engines share, and the old entry points over the backends' registry.
Nothing heavy is imported at module import.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import logging
from collections.abc import Sequence
from types import ModuleType

from sdrt.runtime.errors import ProviderNotAvailableError

logger = logging.getLogger(__name__)


def import_onnxruntime(provider: str = "cpu") -> ModuleType:
    """``onnxruntime``, or an error naming ``sdrt[cpu]`` / ``sdrt[cuda]``."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as error:
        extra = _extra(provider)
        raise ProviderNotAvailableError(
            f"provider {provider!r} needs ONNX Runtime, which is not installed: pip install '{extra}'"
        ) from error


@functools.cache
def preload_cuda_libraries(ort: ModuleType) -> None:
    """Load the CUDA and cuDNN libraries that onnxruntime-gpu's CUDA provider links against, from the
    ``nvidia-*`` wheels beside it (``onnxruntime-gpu[cuda,cudnn]``), once per process. Without torch in
    the process (the runtime's point) nothing else puts them where the provider's loader looks."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime >= 1.21
    if preload is None:
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # it prints what it could not load
        try:
            preload()
        except Exception as error:  # a bad directory or library: the session's own check reports it
            logger.debug("onnxruntime.preload_dlls failed: %s", error)
    for line in printed.getvalue().splitlines():
        logger.debug("onnxruntime.preload_dlls: %s", line)


def import_cupy(provider: str) -> ModuleType:
    """``cupy``, or an error naming the extra of the GPU provider."""
    try:
        return importlib.import_module("cupy")
    except ImportError as error:
        raise ProviderNotAvailableError(
            f"provider {provider!r} keeps arrays on the GPU with CuPy, which is not installed: "
            f"pip install '{_extra(provider)}'"
        ) from error


def has_cuda_device() -> bool:
    """True when CuPy is importable and sees at least one CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        cupy = importlib.import_module("cupy")
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device, broken install: not usable
        return False


def _extra(provider: str) -> str:
    from sdrt.runtime.backends import get_backend

    return get_backend(provider).extra


def provider_available(provider: str) -> bool:
    """Whether ``provider`` can run here (its packages are installed and, for GPUs, a device is seen)."""
    from sdrt.runtime.backends import get_backend

    return get_backend(provider).available()


def select_provider(requested: str = "auto", candidates: Sequence[str] | None = None) -> str:
    """Resolve ``"auto"`` to the best available of ``candidates`` (the backends' registry order).

    A named provider is returned as is when available, else a ``ProviderNotAvailableError`` names the
    extra to install. ``candidates`` lets a caller limit "auto" (e.g. to what a bundle was built for).
    """
    from sdrt.runtime.backends import select_backend

    return select_backend(requested, candidates, available=lambda name: provider_available(name)).name
