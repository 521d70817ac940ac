"""ONNX Runtime: on the CPU (NumPy arrays), on CUDA (CuPy arrays), and the exported graphs as they are.

ONNX Runtime is two backends, one per device, because everything else differs with the device: the
arrays, the optimized graph the build writes (``ort/<component>.onnx``, fused fp16 for CUDA), the extra
to install. ``build-engine --backend ort --device cpu|cuda`` names them by their build spelling.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .base import Backend

if TYPE_CHECKING:
    from sdrt.runtime.bundle.bundle import Bundle
    from sdrt.runtime.bundle.records import ComponentRecord
    from sdrt.runtime.engines.base import Engine

logger = logging.getLogger(__name__)


class OrtBackend(Backend):
    """A component's ORT graph built for this device, else its exported graph, run by ONNX Runtime."""

    title = "ONNX Runtime"
    build_alias: ClassVar[str | None] = "ort"
    record_field: ClassVar[str | None] = "ort"
    export_stage: ClassVar[str | None] = "sdrt.export.stages:ORT"
    device_fixed = True  # the build writes graphs for this backend's device

    def has_files(self, record: ComponentRecord) -> bool:
        return True  # the exported graph runs where no ORT graph was built for this device

    def graph_file(self, record: ComponentRecord) -> str:
        """The ORT graph built for this device, else the exported graph."""
        ort = record.ort
        return ort.file if ort is not None and ort.provider == self.device else record.onnx

    def can_open(self, bundle: Bundle, record: ComponentRecord) -> bool:
        return any((bundle.path / f).is_file() for f in {self.graph_file(record), record.onnx})

    def open_engine(self, bundle: Bundle, name: str) -> Engine:
        from sdrt.runtime.engines.ort.engine import OrtEngine

        record = bundle.record(name)
        path = bundle.path / self.graph_file(record)
        if not path.is_file():
            path = bundle.path / record.onnx
        logger.debug("%s: loading %s on %s", name, path, self.name)
        return OrtEngine(path, provider=self.device, name=name)

    def prepare_cache(self, bundle_dir: Path, record: ComponentRecord) -> None:
        ort = record.ort
        if self.on_gpu or ort is None or ort.provider != self.device:
            return
        from sdrt.runtime.engines.ort.session import open_cpu_session
        from sdrt.runtime.engines.providers import import_onnxruntime

        logger.info("%s: preparing ONNX Runtime's graph for this CPU", record.name)
        open_cpu_session(import_onnxruntime(self.name), bundle_dir / ort.file, name=record.name)

    def record_labels(self, record: ComponentRecord) -> list[str]:
        ort = record.ort
        return [f"ort-{ort.provider}"] if ort is not None and ort.provider == self.device else []


class OrtCpu(OrtBackend):
    name = "cpu"
    title = "ONNX Runtime (CPU)"
    aliases: ClassVar[tuple[str, ...]] = ("ort-cpu",)

    def available(self) -> bool:
        return importlib.util.find_spec("onnxruntime") is not None


class OrtCuda(OrtBackend):
    name = "cuda"
    title = "ONNX Runtime (CUDA)"
    aliases: ClassVar[tuple[str, ...]] = ("ort-cuda",)
    device = "cuda"
    extra = "sdrt[cuda]"
    default_precision = "fp16"
    imports = ("onnxruntime", "cupy")

    def available(self) -> bool:
        from sdrt.runtime.engines.providers import has_cuda_device, import_onnxruntime

        if importlib.util.find_spec("onnxruntime") is None or not has_cuda_device():
            return False
        return "CUDAExecutionProvider" in import_onnxruntime(self.name).get_available_providers()


class OnnxGraphs(OrtCpu):
    """The exported graphs only (``build-engine --backend onnx``); run as they are by ONNX Runtime on the CPU."""

    name = "onnx"
    title = "ONNX graphs"
    aliases = ()
    build_alias = None
    record_field = None
    auto = False  # "cpu" runs these graphs too, and an ORT graph where the bundle has one
    export_stage = None
    device_fixed = False

    def graph_file(self, record: ComponentRecord) -> str:
        return record.onnx

    def precision_default(self, build_device: str) -> str:
        return "fp16" if build_device == "cuda" else "fp32"  # graphs for the GPU, as ``ort --device cuda``

    def prepare_cache(self, bundle_dir: Path, record: ComponentRecord) -> None:
        return  # "cpu" prepares the graphs it runs

    def record_labels(self, record: ComponentRecord) -> list[str]:
        return ["onnx"]
