"""Plan records of a bundle: choose the plan for a shape, and say why a plan cannot be loaded here
(built by another TensorRT module or version, or for another GPU) with the command that rebuilds it.
Pure Python; nothing here needs a GPU."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from sdrt.runtime.bundle.records import PlanRecord
from sdrt.runtime.errors import BundleError, EngineError

from .module import module_label, module_version


class PlanLoadError(EngineError):
    """A plan that cannot be used on this machine; the message ends with the command that rebuilds it."""


def rebuild_command(
    source: str | None, bundle_dir: Path | str | None, component: str, precision: str | None
) -> str:
    """``build-engine <model> -o <bundle> --backend tensorrt --components <component> ...``."""
    words = [
        "build-engine",
        str(source or "MODEL_DIR"),
        "-o",
        str(bundle_dir or "ENGINE_DIR"),
        "--backend",
        "tensorrt",
    ]
    words += ["--components", component]
    if precision:
        words += ["--precision", precision]
    return " ".join(shlex.quote(w) for w in words)


def check_plan_record(plan: PlanRecord, trt: ModuleType, *, rebuild: str) -> None:
    """Refuse a plan built by another TensorRT module or version (plans load only in their own)."""
    label, version = module_label(trt), module_version(trt)
    if plan.trt_module != label:
        raise PlanLoadError(
            f"plan {plan.file} was built with {plan.trt_module} {plan.trt_version}, but this process uses "
            f"{label} {version}; load it with trt_module={plan.trt_module!r} or rebuild it:\n  {rebuild}"
        )
    if plan.trt_version != version and not plan.flags.get("version_compatible"):
        raise PlanLoadError(
            f"plan {plan.file} was built with {plan.trt_module} {plan.trt_version}; the installed one is "
            f"{version} and TensorRT plans only load in the version that built them. Rebuild it:\n  {rebuild}"
        )


_DIAGNOSTICS = {
    "VERSION_MISMATCH": "built by another TensorRT version",
    "UNSUPPORTED_CC": "not built for this GPU's compute capability",
    "OLD_CUDA_DRIVER": "the CUDA driver is too old",
    "OLD_CUDA_RUNTIME": "the CUDA runtime is too old",
    "INSUFFICIENT_GPU_MEMORY": "not enough GPU memory",
    "MALFORMED_ENGINE": "the plan file is damaged",
    "CUDA_ERROR": "CUDA reported an error (no GPU or driver?)",
}


def validity_problems(runtime: Any, data: Any, trt: ModuleType) -> list[str]:
    """Reasons a serialized plan is invalid here, from ``Runtime.get_engine_validity`` where the module has
    it (TensorRT-RTX); empty when valid or when the module cannot tell."""
    check = getattr(runtime, "get_engine_validity", None)
    if check is None:
        return []
    try:
        validity, diagnostics = check(data)
    except Exception:  # noqa: BLE001 - a best-effort diagnosis
        return []
    if getattr(validity, "name", "") != "INVALID":
        return []
    flags = getattr(trt, "EngineInvalidityDiagnostics", None)
    members = getattr(flags, "__members__", {}) if flags is not None else {}
    reasons = [
        text
        for name, text in _DIAGNOSTICS.items()
        if name in members and int(diagnostics) & int(members[name])
    ]
    return reasons or ["the plan is invalid on this machine"]


def select_plan(
    plans: Mapping[str, PlanRecord], *, dims: Mapping[str, int] | None = None, profile: str | None = None
) -> tuple[str, PlanRecord]:
    """The plan named ``profile``, else one whose profile covers ``dims`` (static plans first, then the
    narrowest range), else the only plan. Raises a ``BundleError`` naming the plans there are."""
    if not plans:
        raise BundleError("no TensorRT plans in this bundle: build them with build-engine --backend tensorrt")
    if profile is not None:
        if profile not in plans:
            raise BundleError(f"no plan for profile {profile!r}; the bundle has {sorted(plans)}")
        return profile, plans[profile]
    if dims is None:
        if len(plans) == 1:
            return next(iter(plans.items()))
        raise BundleError(f"several plans {sorted(plans)}: pass dims= or profile= to choose one")
    fitting = [(name, plan) for name, plan in plans.items() if plan.accepts(dims)]
    if not fitting:
        ranges = {name: plan.profile for name, plan in plans.items()}
        raise BundleError(f"no plan covers {dict(dims)}; the plans' ranges are {ranges}")
    return min(fitting, key=lambda item: (not item[1].static, item[1].span))
