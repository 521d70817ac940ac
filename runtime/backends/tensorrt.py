"""TensorRT (or TensorRT-RTX): plans (``plans/<component>.<profile>.plan``) run with CuPy arrays."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .base import Backend

if TYPE_CHECKING:
    from sdrt.runtime.bundle.bundle import Bundle
    from sdrt.runtime.bundle.records import ComponentRecord
    from sdrt.runtime.engines.base import Engine


class TensorRt(Backend):
    name = "tensorrt"
    title = "TensorRT plans"
    device = "cuda"
    record_field = "plans"
    extra = "sdrt[tensorrt]"
    export_stage = "sdrt.export.stages:TENSORRT"
    default_precision = "fp16"
    imports = ("tensorrt", "cupy")

    def available(self) -> bool:
        from sdrt.runtime.engines.providers import has_cuda_device

        trt = importlib.util.find_spec("tensorrt") or importlib.util.find_spec("tensorrt_rtx")
        return trt is not None and has_cuda_device()

    def missing_message(self, bundle: Bundle, names: Iterable[str]) -> str:
        return (
            f"{bundle.path}: the bundle has no TensorRT plans for {', '.join(names)}; rebuild it with "
            "build-engine --backend tensorrt, or use provider='cpu' / 'cuda'"
        )

    def open_engine(self, bundle: Bundle, name: str) -> Engine:
        from sdrt.runtime.engines.tensorrt.engine import TrtEngine

        return TrtEngine.from_bundle(bundle, name)

    def record_labels(self, record: ComponentRecord) -> list[str]:
        return [f"plan:{p}" for p in record.plans]
