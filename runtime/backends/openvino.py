"""OpenVINO on the CPU: the IR (``openvino/<component>.xml``) compiled with the bundle's precision hint."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Backend

if TYPE_CHECKING:
    from sdrt.runtime.bundle.bundle import Bundle
    from sdrt.runtime.bundle.records import ComponentRecord
    from sdrt.runtime.engines.base import Engine


logger = logging.getLogger(__name__)


class OpenVino(Backend):
    name = "openvino"
    title = "OpenVINO IR"
    record_field = "openvino"
    extra = "sdrt[openvino]"
    export_stage = "sdrt.export.stages:OPENVINO"
    precisions = ("fp32", "bf16", "auto")  # OpenVINO's inference precision
    default_precision = "auto"
    graph_precision = "fp32"  # the IR keeps fp32 weights; the compile hint sets the precision
    imports = ("openvino",)

    def available(self) -> bool:
        return importlib.util.find_spec("openvino") is not None

    def open_engine(self, bundle: Bundle, name: str) -> Engine:
        from sdrt.runtime.engines.openvino.engine import OpenVinoEngine

        return OpenVinoEngine.from_bundle(bundle, name)

    def prepare_cache(self, bundle_dir: Path, record: ComponentRecord) -> None:
        if record.openvino is None:
            return
        from sdrt.runtime.engines.openvino.engine import OpenVinoEngine

        logger.info("%s: compiling the OpenVINO IR into the model cache", record.name)
        # the dynamic compile is what a load takes from the cache, whatever SDRT_OPENVINO_STATIC_SHAPES says
        OpenVinoEngine(
            bundle_dir / record.openvino.file,
            record.openvino.precision,
            name=record.name,
            static_shapes=False,
        )

    def record_labels(self, record: ComponentRecord) -> list[str]:
        return [f"openvino-{record.openvino.precision}"] if record.openvino else []

    def precision_label(self, engine: Engine | None, bundle: Bundle) -> str:
        return f"openvino {getattr(engine, 'precision', '?')}"
