"""Plan records of a bundle: choose the plan for a shape, and say why a plan cannot be loaded here
(built by another TensorRT module or version, or for another GPU) with the command that rebuilds it.
Pure Python; nothing here needs a GPU."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .module import module_label, module_version


class PlanLoadError(RuntimeError):
    """A plan that cannot be used on this machine; the message ends with the command that rebuilds it."""


def rebuild_command(
    manifest: Mapping[str, Any] | None,
    bundle_dir: Path | str | None,
    component: str,
    plan: Mapping[str, Any] | None,
) -> str:
    """``build-engine <model> -o <bundle> --backend tensorrt --components <component> ...``."""
    source = ((manifest or {}).get("source") or {}).get("path") or "MODEL_DIR"
    words = ["build-engine", str(source), "-o", str(bundle_dir or "ENGINE_DIR"), "--backend", "tensorrt"]
    words += ["--components", component]
    if plan and plan.get("precision"):
        words += ["--precision", str(plan["precision"])]
    return " ".join(shlex.quote(w) for w in words)


def check_plan_record(plan: Mapping[str, Any], trt: ModuleType, *, rebuild: str) -> None:
    """Refuse a plan built by another TensorRT module or version (plans load only in their own)."""
    label, version = module_label(trt), module_version(trt)
    built_label, built_version = plan.get("trt_module"), plan.get("trt_version")
    if built_label and built_label != label:
        raise PlanLoadError(
            f"plan {plan.get('file')} was built with {built_label} {built_version}, but this process uses "
            f"{label} {version}; load it with trt_module={built_label!r} or rebuild it:\n  {rebuild}"
        )
    if built_version and built_version != version and not (plan.get("flags") or {}).get("version_compatible"):
        raise PlanLoadError(
            f"plan {plan.get('file')} was built with {built_label or label} {built_version}; the installed one is "
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


def plan_accepts(plan: Mapping[str, Any], dims: Mapping[str, int]) -> bool:
    profile = plan.get("profile") or {}
    return all(
        dim not in profile or profile[dim][0] <= value <= profile[dim][-1] for dim, value in dims.items()
    )


def select_plan(
    plans: Mapping[str, Mapping[str, Any]],
    *,
    dims: Mapping[str, int] | None = None,
    profile: str | None = None,
) -> tuple[str, Mapping[str, Any]]:
    """The plan named ``profile``, else one whose profile covers ``dims`` (static plans first, then the
    narrowest range), else the only plan. Raises ``LookupError`` naming the plans there are."""
    if not plans:
        raise LookupError("no TensorRT plans in this bundle: build them with build-engine --backend tensorrt")
    if profile is not None:
        if profile not in plans:
            raise LookupError(f"no plan for profile {profile!r}; the bundle has {sorted(plans)}")
        return profile, plans[profile]
    if dims is None:
        if len(plans) == 1:
            return next(iter(plans.items()))
        raise LookupError(f"several plans {sorted(plans)}: pass dims= or profile= to choose one")
    fitting = [(name, plan) for name, plan in plans.items() if plan_accepts(plan, dims)]
    if not fitting:
        ranges = {name: plan.get("profile") for name, plan in plans.items()}
        raise LookupError(f"no plan covers {dict(dims)}; the plans' ranges are {ranges}")

    def width(item: tuple[str, Mapping[str, Any]]) -> tuple[bool, int]:
        prof = item[1].get("profile") or {}
        span = 1
        for r in prof.values():
            span *= r[-1] - r[0] + 1
        return (not item[1].get("static", False), span)

    return min(fitting, key=width)
