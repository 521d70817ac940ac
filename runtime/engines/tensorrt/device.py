"""The current CUDA device's compute capability, read through the driver (ctypes; no CUDA packages)."""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_ATTR_MAJOR = 75  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
_ATTR_MINOR = 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR


def current_compute_capability(device: int = 0) -> str | None:
    """``"8.9"`` for device ``device``, or ``None`` when there is no driver or no such GPU."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    try:
        if cuda.cuInit(0) != 0:
            return None
        handle = ctypes.c_int()
        if cuda.cuDeviceGet(ctypes.byref(handle), device) != 0:
            return None
        major, minor = ctypes.c_int(), ctypes.c_int()
        if cuda.cuDeviceGetAttribute(ctypes.byref(major), _ATTR_MAJOR, handle) != 0:
            return None
        if cuda.cuDeviceGetAttribute(ctypes.byref(minor), _ATTR_MINOR, handle) != 0:
            return None
    except (AttributeError, OSError) as error:  # a stub libcuda without these symbols
        log.debug("libcuda query failed: %s", error)
        return None
    return f"{major.value}.{minor.value}"
