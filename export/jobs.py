"""What a build does with each component, decided before any work: build it, take it over from the
bundle being replaced, or leave it out.

The rules:

1. A component's *inputs hash* covers everything its export depends on: its weights and config, its
   dim ranges and trace sizes, precision, opset, devices, validation, the exporter revision and the
   versions of the tools. ``--force`` ignores the previous bundle.
2. A component whose hash equals its record in the bundle being replaced, with every file of that
   record present with its recorded size and sha256, is taken over (hard links, no work): "unchanged"
   when it was asked for, "kept" when ``--components`` left it out. A damaged file (truncated,
   replaced, or changed at the same size) makes the component rebuilt.
3. Every other component asked for is built.
4. A component left out by ``--components`` that the bundle being replaced has but that cannot be
   taken over (its inputs changed) is refused before anything runs: the new bundle would silently
   lose it. Components the previous bundle did not have are simply not built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.integrity import file_problems
from sdrt.runtime.bundle.manifest import Manifest, Shapes
from sdrt.runtime.bundle.records import ComponentRecord, Range
from sdrt.runtime.components import Component

from .errors import OptionError
from .model.folder import ModelFolder
from .model.hashing import files_sha256, json_sha256
from .model.info import vae_scale

EXPORTER_REVISION = 1  # bump when the export code changes what it writes: invalidates rule 2


@dataclass
class ExportSettings:
    """What every component's export shares: the part of ``BuildOptions`` it reads, resolved (the export
    device chosen, OpenVINO's precision apart from the graphs'; ``build._settings``)."""

    backend: str  # the backend's name in sdrt.runtime.backends (cpu, cuda, onnx, openvino, tensorrt...)
    device: str  # the device the backend's engines are built for (ORT graphs: their provider)
    export_device: str  # where torch traces and computes the references
    static: bool
    opset: int
    validate: bool
    engine_precision: str = "fp32"  # the precision the engines run at where not the graphs' (OpenVINO's hint)


@dataclass
class ComponentJob:
    component: type[Component]
    ranges: dict[str, Range]
    trace: dict[str, int]
    precision: str
    inputs_hash: str
    asked: bool  # named by --components (or no --components given)
    previous: ComponentRecord | None = None  # the record to take over (rule 2)
    options: dict[str, Any] = field(default_factory=dict)  # the component's build_options that are set

    @property
    def name(self) -> str:
        return self.component.name


def plan_jobs(
    folder: ModelFolder,
    shapes: Shapes,
    settings: ExportSettings,
    *,
    precision: str,
    vae_fp32: bool,
    tools: dict[str, str],
    options: dict[str, Any],
    asked: Sequence[str] | None,
    previous: Manifest | None,
    previous_dir: Path,
) -> list[ComponentJob]:
    """One job per component of the model, with what to do about it (see the module docstring)."""
    scale = vae_scale(folder)
    common: dict[str, Any] = {"static": settings.static, "opset": settings.opset, "device": settings.device}
    common |= {"validate": settings.validate, "tools": tools, "exporter_revision": EXPORTER_REVISION}
    if settings.export_device != settings.device:
        common["export_device"] = settings.export_device
    jobs = []
    for component in folder.components:
        ranges = component.dim_ranges(shapes, scale)
        trace = component.trace_sizes(shapes, scale, ranges)
        component_precision = "fp32" if vae_fp32 and component.source in ("vae", "vae_preview") else precision
        inputs = {
            "weights": files_sha256(folder.hashed_files(component.source), root=folder.path),
            "component": component.name,
            "model_type": folder.model_type,
            "ranges": ranges,
            "trace": trace,
            "precision": component_precision,
            **common,
        }
        own = {k: options[k] for k in component.build_options if options.get(k) is not None}
        # a variant is asked for by its own name or its family's (--components controlnet: every ControlNet)
        asked_for = asked is None or any(vars(c).get("name") in asked for c in component.__mro__)
        job = ComponentJob(
            component, ranges, trace, component_precision, json_sha256({**inputs, **own}), asked_for
        )
        job.options = own
        job.previous = _reusable(previous, previous_dir, job)
        jobs.append(job)
    _refuse_losses(jobs, previous)
    _refuse_controlnets_without_engines(jobs)
    return jobs


def _refuse_controlnets_without_engines(jobs: list[ComponentJob]) -> None:
    """The manifest lists every --controlnet and --adapter, so each needs an engine: built, or taken over."""
    for kind in ("controlnet", "adapter"):
        missing = [
            j.name
            for j in jobs
            if not j.asked
            and j.previous is None
            and any(vars(c).get("name") == kind for c in j.component.__mro__)
        ]
        if missing:
            asked = [j.name for j in jobs if j.asked]
            raise OptionError(
                f"--{kind} with --components {' '.join(asked)}: the bundle would list {', '.join(missing)} "
                f"without an engine; add {kind} to --components (--components {' '.join(asked)} {kind}), "
                f"or leave --{kind} out"
            )


def _reusable(previous: Manifest | None, previous_dir: Path, job: ComponentJob) -> ComponentRecord | None:
    record = previous.components.get(job.name) if previous else None
    if record is None or record.inputs_hash != job.inputs_hash:
        return None
    # sha256 too, not just sizes: a damaged file of the same size must not be taken over
    return None if file_problems(previous_dir, record, hashes=True) else record


def _refuse_losses(jobs: list[ComponentJob], previous: Manifest | None) -> None:
    lost = [
        j.name
        for j in jobs
        if not j.asked and j.previous is None and previous and j.name in previous.components
    ]
    if lost:
        asked = [j.name for j in jobs if j.asked]
        raise OptionError(
            f"--components {' '.join(asked)} leaves out {', '.join(lost)}, which the bundle being replaced has "
            f"but which cannot be kept (the build options or weights changed since), so the new bundle would "
            f"lose {'it' if len(lost) == 1 else 'them'}: run again with --components {' '.join(asked + lost)}, "
            "or without --components"
        )
