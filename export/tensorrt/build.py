"""``build_trt_plans``: TensorRT plans for a bundle's components, with a plan cache.

Called by ``build-engine --backend tensorrt`` after the ONNX export. Per component: one optimization
profile from the manifest's ``dims`` (or ``profiles``), validated for every component before anything
is built; the plan goes to ``plans/<component>.<profile>.plan`` and its record to the component's
``plans`` in the returned manifest. A plan whose key (ONNX bytes, profile, precision, flags, TensorRT
module + version) matches its record and whose file exists is kept as it is.

Works with full TensorRT (>= 10, needs a GPU to build) and TensorRT-RTX (builds with no GPU, for the
compute capabilities in ``target_compute`` or its default set 8.0 / 8.6 / 8.9 / 12.0+).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdrt.export.errors import OptionError
from sdrt.runtime.bundle.manifest import Manifest, read_previous_manifest
from sdrt.runtime.bundle.records import ComponentRecord, PlanRecord
from sdrt.runtime.engines.tensorrt.device import current_compute_capability
from sdrt.runtime.engines.tensorrt.module import import_trt, is_rtx, module_label, module_version
from sdrt.runtime.errors import BundleNotFoundError

from .cache import TIMING_CACHE, onnx_sha256, plan_key, supports_timing_cache
from .network import BuildSettings, cc_label, choose_precision, compute_capabilities
from .plan import PlanJob, build_plan, build_plan_isolated
from .profiles import ShapeProfile, profile_for

log = logging.getLogger(__name__)

ISOLATE_ABOVE_BYTES = 256 << 20  # auto: ONNX graphs this large are built in a child process


def build_trt_plans(
    bundle_dir: Path,
    manifest: Manifest,
    *,
    components: list[str],
    precision: str = "fp16",
    trt_module: str | None = None,
    target_compute: list[str] | None = None,
    optimization_level: int = 3,
    workspace_gb: float | None = None,
    refittable: bool = False,
    static: bool = False,
    profiles: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    force: bool = False,
    isolate: bool | None = None,
) -> Manifest:
    """Build the plans of ``components``; return a copy of ``manifest`` with their ``plans`` records.

    ``profiles`` overrides a component's dim ranges (``{"unet": {"batch": [2, 2], "latent_height":
    [64, 64], ...}}``, [min, max] or [min, opt, max]); ``static`` collapses every range to its opt
    point; ``force`` rebuilds even up-to-date plans; ``isolate`` builds each plan in a child process
    (default: for ONNX graphs over 256 MB). Raises ``ProfileError`` before any build for a bad range,
    ``OnnxParseError`` naming the node and operator TensorRT cannot parse, ``TrtBuildError``.
    """
    trt = import_trt(trt_module)
    manifest = copy.deepcopy(manifest)
    unknown = [c for c in components if c not in manifest.components]
    if unknown:
        raise OptionError(f"no component(s) {unknown} in the manifest; it has {sorted(manifest.components)}")
    builder = PlanBuilder(Path(bundle_dir), trt, target_compute, force=force, isolate=isolate)
    if refittable and is_rtx(trt) and current_compute_capability() is None:
        raise OptionError(
            f"{builder.label} {builder.version} cannot build refittable plans without a GPU (its refit path "
            "compiles on the device; the CPU-only build fails in Myelin): build without --refittable here, or "
            "on a machine with an NVIDIA GPU"
        )
    planned = [
        (
            manifest.components[c],
            profile_for(manifest.components[c], manifest, requested=(profiles or {}).get(c), static=static),
        )
        for c in components
    ]  # every profile checked before the first build
    previous = read_previous_manifest(builder.bundle)
    log.info("TensorRT plans with %s %s for %s", builder.label, builder.version, ", ".join(components))
    for record, profile in planned:
        plan_precision = choose_precision(trt, record.precision, precision, record.name)
        settings = builder.settings(plan_precision, optimization_level, workspace_gb, refittable)
        old = record.plans.get(profile.name)
        if old is None and previous is not None and record.name in previous.components:
            old = previous.components[record.name].plans.get(profile.name)
        record.plans[profile.name] = builder.build_or_reuse(record, profile, settings, old)
    return manifest


class PlanBuilder:
    """What every plan of one ``build_trt_plans`` call shares: the bundle, the TensorRT module and its
    targets, the timing cache; ``build_or_reuse`` makes one plan or keeps an up-to-date one."""

    def __init__(
        self, bundle: Path, trt: Any, target_compute: list[str] | None, *, force: bool, isolate: bool | None
    ) -> None:
        self.bundle = bundle
        self.trt = trt
        self.label, self.version = module_label(trt), module_version(trt)
        self.targets = [cc_label(t) for t in compute_capabilities(trt, target_compute)]  # validates early
        self.timing_cache = str(bundle / TIMING_CACHE) if supports_timing_cache(trt) else None
        self.force = force
        self.isolate = isolate

    def settings(
        self,
        precision: tuple[bool, bool, str],
        optimization_level: int,
        workspace_gb: float | None,
        refittable: bool,
    ) -> BuildSettings:
        strongly_typed, fp16_flag, plan_precision = precision
        return BuildSettings(
            strongly_typed=strongly_typed,
            fp16_flag=fp16_flag,
            precision=plan_precision,
            optimization_level=optimization_level,
            workspace_gb=workspace_gb,
            refittable=refittable,
            compute_capabilities=tuple(self.targets or _default_targets(self.trt)),
            timing_cache=self.timing_cache is not None,
        )

    def build_or_reuse(
        self, record: ComponentRecord, profile: ShapeProfile, settings: BuildSettings, old: PlanRecord | None
    ) -> PlanRecord:
        component, onnx_path = record.name, self.bundle / record.onnx
        if not onnx_path.is_file():
            raise BundleNotFoundError(
                f"{component}: ONNX {onnx_path} is missing; run build-engine to export it first"
            )
        input_shapes = profile.input_shapes(record.inputs)
        key = plan_key(
            onnx_digest=onnx_sha256(onnx_path),
            input_shapes=input_shapes,
            precision=settings.precision,
            flags=settings.flags(),
            trt_module=self.label,
            trt_version=self.version,
        )
        if not self.force and old and old.key == key and (self.bundle / old.file).is_file():
            log.info("%s: plan %s is up to date (key %s), not rebuilt", component, old.file, key[:12])
            return old
        rel_file = f"plans/{component}.{profile.name}.plan"
        (self.bundle / "plans").mkdir(parents=True, exist_ok=True)
        job = PlanJob(
            component=component,
            profile_name=profile.name,
            onnx_path=str(onnx_path),
            plan_path=str(self.bundle / rel_file),
            inputs={name: spec.to_record() for name, spec in record.inputs.items()},
            input_shapes=input_shapes,
            settings=settings,
            target_compute=self.targets,
            trt_module=self.label,
            timing_cache_path=self.timing_cache,
        )
        big = (
            sum(p.stat().st_size for p in onnx_path.parent.glob(onnx_path.stem + ".onnx*"))
            > ISOLATE_ABOVE_BYTES
        )
        stats = (
            build_plan_isolated(job)
            if (self.isolate if self.isolate is not None else big)
            else build_plan(job)
        )
        return PlanRecord(
            file=rel_file,
            trt_module=self.label,
            trt_version=self.version,
            compute_capabilities=list(settings.compute_capabilities),
            profile=profile.as_record(),
            input_shapes={k: [list(s) for s in v] for k, v in input_shapes.items()},
            static=profile.is_static,
            precision=settings.precision,
            flags={**settings.flags(), "timing_cache": settings.timing_cache},
            key=key,
            build_seconds=stats["build_seconds"],
            bytes=stats["bytes"],
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def _default_targets(trt: Any) -> list[str]:
    """What the plan runs on when no target is named: RTX's portable default, else the build GPU."""
    if is_rtx(trt):
        return ["default"]
    return [current_compute_capability() or "current"]
