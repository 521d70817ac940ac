"""Each backend's export stage: what the build writes for a backend beyond the exported ONNX graphs.

A backend names its stage as ``Backend.export_stage = "sdrt.export.stages:ORT"`` (the runtime never imports
export); :func:`stage_of` resolves it. A stage has three steps, each a no-op where the backend has none:
``component`` after a component's graph is exported and validated (ORT graphs, OpenVINO IR), ``current``
for a component taken over from the previous bundle (is its files' record still what the settings
ask, else ``component`` redoes them), and ``bundle`` once the manifest is written (TensorRT plans).
``check`` runs first, so that a missing engine library is reported before minutes of export.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from sdrt.runtime.backends import Backend, get_backend
from sdrt.runtime.bundle.manifest import Manifest
from sdrt.runtime.bundle.records import ComponentRecord

from .jobs import ExportSettings


class EngineStage:
    """A backend's build steps (this base: none, the ONNX graphs only)."""

    after_manifest = False  # whether ``bundle`` has work to do

    def check(self, trt_options: dict[str, Any] | None) -> None:
        """Refuse before the export when the engine library is missing."""

    def check_device(self, backend: Backend, device: str) -> None:
        """Refuse a ``--device`` the engines cannot run on (where the backend's engines ignore it)."""

    def component(
        self,
        work: Path,
        record: ComponentRecord,
        settings: ExportSettings,
        *,
        fp32_graph: Path | None = None,
        cases: list | None = None,
        scratch: Path | None = None,
    ) -> None:
        """Write this backend's files of ``record`` into ``work`` and record them in ``record``."""

    def current(self, record: ComponentRecord, settings: ExportSettings) -> bool:
        """Whether ``record``'s files for this backend are those ``settings`` ask for."""
        return True

    def bundle(
        self,
        work: Path,
        manifest: Manifest,
        names: list[str],
        precision: str,
        trt_options: dict[str, Any] | None,
    ) -> Manifest:
        """The bundle-wide step after the manifest is written; returns the new manifest."""
        return manifest


class OrtStage(EngineStage):
    """``ort/<component>.onnx``: the graph optimized for the backend's device (GPU graphs gated)."""

    def component(
        self,
        work: Path,
        record: ComponentRecord,
        settings: ExportSettings,
        *,
        fp32_graph: Path | None = None,
        cases: list | None = None,
        scratch: Path | None = None,
    ) -> None:
        from .ort.stage import ort_stage

        record.ort = ort_stage(work, record, provider=settings.device, fp32_graph=fp32_graph, cases=cases)
        if get_backend(settings.backend).on_gpu and cases and fp32_graph is not None and scratch is not None:
            from sdrt.runtime.components import component_class

            from .ort.gate import gate_cuda_graph

            record.ort.validation = gate_cuda_graph(
                record.ort.validation,
                component=component_class(record.name, record.class_name),
                precision=record.precision,
                fp32_graph=fp32_graph,
                cases=cases,
                scratch=scratch,
            )

    def current(self, record: ComponentRecord, settings: ExportSettings) -> bool:
        return record.ort is not None and record.ort.provider == settings.device


class OpenVinoStage(EngineStage):
    """``openvino/<component>.xml``: the fp32 graph as IR, gated at the bundle's precision."""

    def check(self, trt_options: dict[str, Any] | None) -> None:
        from sdrt.runtime.engines.openvino.engine import import_openvino

        import_openvino()

    def check_device(self, backend: Backend, device: str) -> None:
        if device != backend.device:
            from .errors import OptionError

            raise OptionError(
                f"--backend {backend.name} --device {device}: sdrt's {backend.title} engines run on the "
                f"{backend.device.upper()} only; leave --device out, or use --backend ort --device {device}"
            )

    def component(
        self,
        work: Path,
        record: ComponentRecord,
        settings: ExportSettings,
        *,
        fp32_graph: Path | None = None,
        cases: list | None = None,
        scratch: Path | None = None,
    ) -> None:
        from .openvino.convert import openvino_stage

        record.openvino = openvino_stage(work, record, precision=settings.engine_precision, cases=cases)

    def current(self, record: ComponentRecord, settings: ExportSettings) -> bool:
        from .openvino.convert import recorded_precision

        wanted = recorded_precision(settings.engine_precision)
        return record.openvino is not None and record.openvino.precision == wanted


class TensorRtStage(EngineStage):
    """``plans/``: TensorRT plans of the asked components, once the manifest is written."""

    after_manifest = True

    def check(self, trt_options: dict[str, Any] | None) -> None:
        from sdrt.runtime.engines.tensorrt.module import import_trt

        import_trt((trt_options or {}).get("trt_module"))

    def bundle(
        self,
        work: Path,
        manifest: Manifest,
        names: list[str],
        precision: str,
        trt_options: dict[str, Any] | None,
    ) -> Manifest:
        from .tensorrt.build import build_trt_plans

        options = dict(trt_options or {})
        return build_trt_plans(
            work,
            manifest,
            components=names,
            precision=precision,
            trt_module=options.get("trt_module"),
            target_compute=options.get("target_compute"),
            optimization_level=options.get("optimization_level", 3),
            workspace_gb=options.get("workspace_gb"),
            refittable=options.get("refittable", False),
            static=manifest.shapes.static,
        )


GRAPHS_ONLY = EngineStage()
ORT = OrtStage()
OPENVINO = OpenVinoStage()
TENSORRT = TensorRtStage()


def stage_of(backend: Backend) -> EngineStage:
    """The stage ``backend.export_stage`` names (``"module:attribute"``); none: the ONNX graphs only."""
    if backend.export_stage is None:
        return GRAPHS_ONLY
    module, _, attribute = backend.export_stage.partition(":")
    stage = getattr(importlib.import_module(module), attribute)
    if not isinstance(stage, EngineStage):
        raise TypeError(f"backend {backend.name}: {backend.export_stage} is not an EngineStage")
    return stage
