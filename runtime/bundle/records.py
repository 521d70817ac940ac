"""The per-component records of ``manifest.json``: the exported graph, its ORT graph, its TensorRT plans.

Part of the bundle schema (see ``manifest``): plain dataclasses with the JSON spelling in
``to_json``/``from_json``. A validation record (``Figures``) stays a dict: its keys depend on the gate
(metric, value, threshold, worst output, shapes, provider; the CUDA gate adds status and CPU checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrt.runtime.tensors import TensorSpec

Range = tuple[int, int]
Figures = dict[str, Any]


@dataclass(frozen=True)
class FileRecord:
    """A file of the bundle as the build wrote it."""

    bytes: int
    sha256: str


@dataclass
class OrtRecord:
    """``ort/<component>.onnx``: the graph optimized offline for one ONNX Runtime provider."""

    file: str
    provider: str = "cpu"
    validation: Figures | None = None
    seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)  # what the optimizer reports (fusions, counts...)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrtRecord:
        own = ("file", "provider", "validation", "seconds")
        return cls(
            file=data["file"],
            provider=data.get("provider", "cpu"),
            validation=data.get("validation"),
            seconds=data.get("seconds"),
            details={k: v for k, v in data.items() if k not in own},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            **self.details,
            "file": self.file,
            "validation": self.validation,
            "seconds": self.seconds,
        }


@dataclass
class OpenVinoRecord:
    """``openvino/<component>.xml`` (+ ``.bin``): the graph as OpenVINO IR, and the precision it runs in."""

    file: str
    precision: str = "fp32"  # fp32 | bf16 | auto (bf16 where the CPU has it): OpenVINO's inference precision
    validation: Figures | None = None
    seconds: float | None = None
    openvino_version: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OpenVinoRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PlanRecord:
    """``plans/<component>.<profile>.plan``: one TensorRT plan and what it was built from and for."""

    file: str
    trt_module: str
    trt_version: str
    profile: dict[str, list[int]]  # dim -> [min, opt, max]
    input_shapes: dict[str, list[list[int]]]  # input -> [min_shape, opt_shape, max_shape]
    precision: str
    key: str  # hash of everything the plan depends on: equal key, no rebuild
    static: bool = False
    compute_capabilities: list[str] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    build_seconds: float | None = None
    bytes: int | None = None
    built_at: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def accepts(self, dims: Mapping[str, int]) -> bool:
        """Whether every dim in ``dims`` that the profile ranges over lies inside its range."""
        return all(
            dim not in self.profile or self.profile[dim][0] <= v <= self.profile[dim][-1]
            for dim, v in dims.items()
        )

    @property
    def span(self) -> int:
        """How many shapes the profile covers (1 for a static plan)."""
        count = 1
        for r in self.profile.values():
            count *= r[-1] - r[0] + 1
        return count


@dataclass
class ComponentRecord:
    """One exported component: its ONNX graph, I/O, dim ranges, validation, and its engines."""

    name: str
    class_name: str  # the diffusers / transformers class it was exported from
    onnx: str
    precision: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    dims: dict[str, Range]  # named dim -> (min, max) the graph was exported for
    trace: dict[str, int] = field(default_factory=dict)
    static: bool = False
    external_data: bool = False
    bytes: int = 0
    opset: int = 17
    validation: Figures | None = None
    export_seconds: float = 0.0
    inputs_hash: str | None = None  # of everything the export depends on: equal hash, no rebuild
    ort: OrtRecord | None = None
    openvino: OpenVinoRecord | None = None
    plans: dict[str, PlanRecord] = field(default_factory=dict)
    checksums: dict[str, FileRecord] = field(default_factory=dict)  # bundle-relative file -> size, sha256
    weights: str | None = None  # onnx/<name>.weights.json: parameter -> initializer per graph (run-time LoRA)

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> ComponentRecord:
        return cls(
            name=name,
            class_name=data["class"],
            onnx=data["onnx"],
            precision=data["precision"],
            inputs={k: TensorSpec.from_record(k, v) for k, v in data["inputs"].items()},
            outputs={k: TensorSpec.from_record(k, v) for k, v in data["outputs"].items()},
            dims={k: (int(v[0]), int(v[1])) for k, v in (data.get("dims") or {}).items()},
            trace=dict(data.get("trace") or {}),
            static=bool(data.get("static", False)),
            external_data=bool(data.get("external_data", False)),
            bytes=int(data.get("bytes", 0)),
            opset=int(data.get("opset", 17)),
            validation=data.get("validation"),
            export_seconds=float(data.get("export_seconds", 0.0)),
            inputs_hash=data.get("inputs_hash"),
            ort=OrtRecord.from_json(data["ort"]) if data.get("ort") else None,
            openvino=OpenVinoRecord.from_json(data["openvino"]) if data.get("openvino") else None,
            plans={k: PlanRecord.from_json(v) for k, v in (data.get("plans") or {}).items()},
            checksums={
                k: FileRecord(int(v["bytes"]), v["sha256"]) for k, v in (data.get("checksums") or {}).items()
            },
            weights=data.get("weights"),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "class": self.class_name,
            "onnx": self.onnx,
            "external_data": self.external_data,
            "bytes": self.bytes,
            "precision": self.precision,
            "inputs": {k: v.to_record() for k, v in self.inputs.items()},
            "outputs": {k: v.to_record() for k, v in self.outputs.items()},
            "dims": {k: list(v) for k, v in self.dims.items()},
            "trace": dict(self.trace),
            "static": self.static,
            "opset": self.opset,
            "validation": self.validation,
            "export_seconds": self.export_seconds,
            "inputs_hash": self.inputs_hash,
        }
        if self.ort is not None:
            data["ort"] = self.ort.to_json()
        if self.openvino is not None:
            data["openvino"] = self.openvino.to_json()
        if self.plans:
            data["plans"] = {k: v.to_json() for k, v in self.plans.items()}
        if self.weights:
            data["weights"] = self.weights
        if self.checksums:
            data["checksums"] = {k: {"bytes": v.bytes, "sha256": v.sha256} for k, v in self.checksums.items()}
        return data

    @property
    def batch_range(self) -> Range | None:
        return self.dims.get("batch")

    def graph_file(self, provider: str) -> str:
        """The ONNX file to run on ``provider``: the ORT graph built for it, else the exported graph."""
        if self.ort is not None and self.ort.provider == provider:
            return self.ort.file
        return self.onnx

    def files(self) -> list[str]:
        """Bundle-relative files the record points at (graphs, their external data, plans)."""
        files = []
        for graph in (self.onnx, self.ort.file if self.ort else None):
            if graph:
                files += [graph, str(Path(graph).with_suffix(".onnx_data"))]
        if self.openvino is not None:
            files += [self.openvino.file, str(Path(self.openvino.file).with_suffix(".bin"))]
        return files + [plan.file for plan in self.plans.values()] + ([self.weights] if self.weights else [])
