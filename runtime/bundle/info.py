"""A readable summary of a bundle: what is in it, which providers can run it, its shape ranges."""

from __future__ import annotations

from typing import Any

from .bundle import Bundle, has_plans


def _size(num_bytes: Any) -> str:
    if not isinstance(num_bytes, int | float):
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return "?"


def _range(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]) if value[0] == value[1] else f"{value[0]}..{value[1]}"
    return str(value)


def provider_support(bundle: Bundle) -> dict[str, str]:
    """Per provider: ``"yes"`` or why not (not installed, no engines of that kind in the bundle)."""
    from sdrt.runtime.engines.providers import EXTRAS, PROVIDERS, provider_available

    names = tuple(bundle.components)
    support = {}
    for provider in PROVIDERS:
        if provider == "tensorrt" and not has_plans(bundle, names):
            support[provider] = "no TensorRT plans in the bundle (build-engine --backend tensorrt)"
        elif not provider_available(provider):
            gpu = "" if provider == "cpu" else " and a CUDA GPU"
            support[provider] = f"not available here (pip install '{EXTRAS[provider]}'{gpu})"
        else:
            support[provider] = "yes"
    return support


def describe_bundle(bundle: Bundle) -> str:
    """Multi-line text for ``sdrt inspect``."""
    from sdrt.runtime.pipelines.auto import PIPELINE_FOR_MODEL_TYPE

    m = bundle.manifest
    pipeline = PIPELINE_FOR_MODEL_TYPE.get(bundle.model_type, ("", "(no sdrt pipeline)"))[1]
    source = m.get("source") or {}
    lines = [
        f"bundle       {bundle.path}",
        f"format       {m.get('format_version')} (sdrt {m.get('sdrt_version', '?')})",
        f"model type   {bundle.model_type} -> {pipeline}",
        f"source       {source.get('path', '?')}",
        f"prediction   {m.get('prediction_type', '?')}",
    ]
    shapes = m.get("shapes") or {}
    if shapes:
        ranges = ", ".join(f"{k} {_range(shapes[k])}" for k in ("batch", "height", "width") if k in shapes)
        extra = []
        if shapes.get("default"):
            extra.append("default " + "x".join(str(v) for v in shapes["default"]))
        if shapes.get("size_multiple"):
            extra.append(f"multiple of {shapes['size_multiple']}")
        if shapes.get("static"):
            extra.append("static")
        lines.append(
            f"sizes        {ranges} (pixels; batch per prompt batch)"
            + (f"; {', '.join(extra)}" if extra else "")
        )
    tools = m.get("tools") or {}
    if tools:
        lines.append("built with   " + ", ".join(f"{k} {v}" for k, v in tools.items() if v))
    lines.append("components")
    for name, record in bundle.components.items():
        dims = ", ".join(f"{k} {_range(v)}" for k, v in (record.get("dims") or {}).items())
        backends = ["onnx"]
        if record.get("ort"):
            backends.append(f"ort-{record['ort'].get('provider', 'cpu')}")
        for profile in record.get("plans") or {}:
            backends.append(f"plan:{profile}")
        lines.append(
            f"  {name:<15} {record.get('precision', '?'):<5} {_size(record.get('bytes')):>9}  "
            f"[{', '.join(backends)}]  {dims}"
        )
    lines.append("providers")
    for provider, status in provider_support(bundle).items():
        lines.append(f"  {provider:<9} {status}")
    return "\n".join(lines)
