"""Pick the TensorRT Python module: full TensorRT (``tensorrt`` >= 10) or TensorRT-RTX.

Two modules speak (almost) the same API:

* ``tensorrt`` (>= 10): what users have next to their datacenter / GeForce GPUs. Builds need a GPU
  and produce plans for that GPU.
* TensorRT-RTX (``tensorrt_rtx_bindings`` from the ``tensorrt-rtx-cu13-bindings`` wheel, or
  ``tensorrt_rtx`` from NVIDIA's SDK): builds ahead of time with no GPU for chosen compute
  capabilities, JIT-compiles kernels on the target GPU at load time. Its timing cache is a no-op and it
  has no ``BuilderFlag.FP16`` (fp16 comes from a strongly typed fp16 ONNX).

The manifest records which one built a plan under the labels ``"tensorrt"`` and ``"tensorrt_rtx"``; a
plan only loads in the module (and version) that built it. Nothing here needs a GPU.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from sdrt.runtime.errors import InputError, ProviderNotAvailableError

log = logging.getLogger(__name__)

TENSORRT = "tensorrt"
TENSORRT_RTX = "tensorrt_rtx"
_ALIASES = {
    "tensorrt": TENSORRT,
    "trt": TENSORRT,
    "tensorrt_rtx": TENSORRT_RTX,
    "tensorrt-rtx": TENSORRT_RTX,
    "rtx": TENSORRT_RTX,
    "tensorrt_rtx_bindings": TENSORRT_RTX,
}
_IMPORT_NAMES = {TENSORRT: ("tensorrt",), TENSORRT_RTX: ("tensorrt_rtx_bindings", "tensorrt_rtx")}
_INSTALL_HINT = {
    TENSORRT: "pip install 'sdrt[tensorrt]'  (tensorrt>=10; needs an NVIDIA GPU to build and run)",
    TENSORRT_RTX: "pip install 'sdrt[rtx]'  (tensorrt-rtx-cu13-bindings and tensorrt-rtx-cu13-libs)",
}
MIN_TENSORRT_MAJOR = 10


class TrtModuleError(ProviderNotAvailableError):
    """No usable TensorRT module (none installed, or the one asked for is missing / too old)."""


def canonical_label(name: str) -> str:
    """Map a user spelling ('rtx', 'tensorrt-rtx', 'trt', ...) to ``tensorrt`` or ``tensorrt_rtx``."""
    label = _ALIASES.get(name.strip().lower())
    if label is None:
        raise InputError(f"unknown TensorRT module {name!r}: use 'tensorrt' or 'tensorrt_rtx'")
    return label


def _try_import(label: str) -> ModuleType | None:
    for import_name in _IMPORT_NAMES[label]:
        try:
            module = importlib.import_module(import_name)
        except ImportError:
            continue
        if hasattr(module, "Builder") or hasattr(module, "Runtime"):
            return module
    return None


def import_trt(name: str | None = None) -> ModuleType:
    """Import the TensorRT module asked for, or the installed one (full TensorRT first) when ``None``."""
    labels = [canonical_label(name)] if name else [TENSORRT, TENSORRT_RTX]
    for label in labels:
        module = _try_import(label)
        if module is None:
            continue
        if label == TENSORRT and _major(module.__version__) < MIN_TENSORRT_MAJOR:
            raise TrtModuleError(
                f"tensorrt {module.__version__} is too old: sdrt needs tensorrt >= {MIN_TENSORRT_MAJOR} "
                f"({_INSTALL_HINT[TENSORRT]})"
            )
        log.debug("using %s %s", label, module.__version__)
        return module
    hints = "; or ".join(_INSTALL_HINT[label] for label in labels)
    asked = f"TensorRT module {name!r}" if name else "no TensorRT module"
    raise TrtModuleError(f"{asked} is not installed: {hints}")


def module_label(trt: ModuleType) -> str:
    """``"tensorrt_rtx"`` for TensorRT-RTX, ``"tensorrt"`` for full TensorRT."""
    return TENSORRT_RTX if "rtx" in trt.__name__.lower() else TENSORRT


def is_rtx(trt: ModuleType) -> bool:
    return module_label(trt) == TENSORRT_RTX


def module_version(trt: ModuleType) -> str:
    return str(trt.__version__)


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0
