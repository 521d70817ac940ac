"""The plan cache key and the bundle's TensorRT timing cache.

A plan is rebuilt only when its key changes: a hash over the ONNX bytes (graph and external data),
the profile (every input's min/opt/max shape), the precision, the build flags and the TensorRT
module + version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from sdrt.runtime.bundle.integrity import file_sha256
from sdrt.runtime.engines.tensorrt.module import is_rtx

log = logging.getLogger(__name__)

TIMING_CACHE = "timing.cache"


def onnx_files(onnx_path: Path) -> list[Path]:
    """The ONNX file and its external-data files (``<name>.onnx_data`` / ``<name>.onnx.data``)."""
    files = [onnx_path]
    for suffix in (".onnx_data", ".onnx.data", ".data"):
        extra = onnx_path.with_name(onnx_path.stem + suffix)
        if extra.is_file() and extra != onnx_path:
            files.append(extra)
    return files


def onnx_sha256(onnx_path: Path) -> str:
    digest = hashlib.sha256()
    for path in onnx_files(onnx_path):
        digest.update(path.name.encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


def plan_key(
    *,
    onnx_digest: str,
    input_shapes: Mapping[str, Any],
    precision: str,
    flags: Mapping[str, Any],
    trt_module: str,
    trt_version: str,
) -> str:
    payload = {
        "onnx": onnx_digest,
        "input_shapes": {k: [list(s) for s in v] for k, v in sorted(input_shapes.items())},
        "precision": precision,
        "flags": dict(sorted(flags.items())),
        "trt_module": trt_module,
        "trt_version": trt_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def supports_timing_cache(trt: ModuleType) -> bool:
    """Full TensorRT keeps tactic timings; in TensorRT-RTX timing-cache calls are deprecated no-ops."""
    return not is_rtx(trt) and hasattr(trt.IBuilderConfig, "create_timing_cache")


def load_timing_cache(config: Any, path: Path) -> Any:
    """Attach the bundle's timing cache (or a fresh one) to ``config``; returns the cache object."""
    data = b""
    if path.is_file():
        data = path.read_bytes()
        log.info("reusing timing cache %s (%d bytes)", path, len(data))
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):
        log.warning("timing cache %s does not match this TensorRT/GPU; starting a fresh one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def save_timing_cache(config: Any, path: Path) -> None:
    cache = config.get_timing_cache()
    if cache is None:
        return
    write_atomic(path, memoryview(cache.serialize()))


def write_atomic(path: Path, data: Any) -> None:
    """Write bytes (or a buffer) to ``path`` through a temporary file, so a crash leaves no half file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
