"""Providers: which backends are installed, "auto" choice, and clear errors naming the extra to install.

``provider`` is one of ``"cpu"`` (ONNX Runtime, NumPy), ``"openvino"`` (OpenVINO on the CPU, NumPy),
``"cuda"`` (onnxruntime-gpu with CuPy) or ``"tensorrt"`` (TensorRT plans with CuPy); ``"auto"`` takes
the first available of tensorrt > cuda > openvino > cpu among those a bundle has engines for. Nothing
heavy is imported at module import.
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

from sdrt.runtime.errors import InputError, ProviderNotAvailableError

logger = logging.getLogger(__name__)

PROVIDERS = ("tensorrt", "cuda", "openvino", "cpu")
EXTRAS = {
    "cpu": "sdrt[cpu]",
    "cuda": "sdrt[cuda]",
    "tensorrt": "sdrt[tensorrt]",
    "openvino": "sdrt[openvino]",
}
GPU_PROVIDERS = ("cuda", "tensorrt")


def import_onnxruntime(provider: str = "cpu") -> ModuleType:
    """``onnxruntime``, or an error naming ``sdrt[cpu]`` / ``sdrt[cuda]``."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as error:
        extra = EXTRAS["cuda" if provider == "cuda" else "cpu"]
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
            f"pip install '{EXTRAS[provider]}'"
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


def provider_available(provider: str) -> bool:
    """Whether ``provider`` can run here (its packages are installed and, for GPUs, a device is seen)."""
    if provider == "cpu":
        return importlib.util.find_spec("onnxruntime") is not None
    if provider == "openvino":
        return importlib.util.find_spec("openvino") is not None
    if provider == "cuda":
        if importlib.util.find_spec("onnxruntime") is None or not has_cuda_device():
            return False
        return "CUDAExecutionProvider" in import_onnxruntime("cuda").get_available_providers()
    if provider == "tensorrt":
        trt = importlib.util.find_spec("tensorrt") or importlib.util.find_spec("tensorrt_rtx")
        return trt is not None and has_cuda_device()
    raise InputError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)} or 'auto'")


def select_provider(requested: str = "auto", candidates: Sequence[str] = PROVIDERS) -> str:
    """Resolve ``"auto"`` to the best available of ``candidates`` (in tensorrt > cuda > cpu order).

    A named provider is returned as is when available, else a ``ProviderNotAvailableError`` names the
    extra to install. ``candidates`` lets a caller limit "auto" (e.g. to what a bundle was built for).
    """
    if requested != "auto":
        if requested not in PROVIDERS:
            raise InputError(f"unknown provider {requested!r}: use one of {', '.join(PROVIDERS)} or 'auto'")
        if not provider_available(requested):
            gpu = " and a CUDA GPU" if requested in GPU_PROVIDERS else ""
            raise ProviderNotAvailableError(
                f"provider {requested!r} is not available here: it needs pip install '{EXTRAS[requested]}'{gpu}"
            )
        return requested
    for provider in (p for p in PROVIDERS if p in candidates):
        if provider_available(provider):
            logger.info("provider 'auto' -> %r", provider)
            return provider
    raise ProviderNotAvailableError(
        f"no provider among {list(candidates)} is available: pip install 'sdrt[cpu]' "
        "(or 'sdrt[cuda]' / 'sdrt[tensorrt]' on a CUDA machine)"
    )
