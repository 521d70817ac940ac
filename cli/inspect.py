"""``sdrt inspect``: a readable summary of a bundle: what is in it, which providers can run it, its sizes."""

from __future__ import annotations

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.bundle.integrity import file_problems
from sdrt.runtime.bundle.manifest import VaeInfo
from sdrt.runtime.bundle.records import ComponentRecord
from sdrt.runtime.errors import BundleError
from sdrt.runtime.pipelines.auto import pipeline_entry

from .format import human_bytes, range_text


def provider_support(bundle: Bundle) -> dict[str, str]:
    """Per provider: ``"yes"`` or why not (not installed, no engines of that kind in the bundle)."""
    from sdrt.runtime.backends import BACKENDS

    return {name: backend.inspect_status(bundle) for name, backend in BACKENDS.items() if backend.auto}


def describe_bundle(bundle: Bundle) -> str:
    """Multi-line text for ``sdrt inspect``."""
    m = bundle.manifest
    pipeline = (pipeline_entry(bundle) or ("", "(no sdrt pipeline)"))[1]
    shapes = m.shapes
    extra = [f"default {shapes.default[0]}x{shapes.default[1]}", f"multiple of {shapes.size_multiple}"]
    extra += ["static"] if shapes.static else []
    ranges = f"batch {range_text(shapes.batch)}, height {range_text(shapes.height)}, width {range_text(shapes.width)}"
    mapped = [name for name, record in bundle.components.items() if record.weights]
    lines = [
        f"bundle       {bundle.path}",
        f"format       {m.format_version} (sdrt {m.sdrt_version})",
        f"model type   {bundle.model_type} -> {pipeline}",
        f"source       {m.source.path}",
        *([_checkpoint_line(m.source.checkpoint)] if m.source.checkpoint else []),
        *([f"vae          {m.source.vae} (build-engine --vae)"] if m.source.vae else []),
        *([_vae_class_line(m.vae)] if m.vae else []),
        *(
            [f"preview vae  {m.source.preview_vae} (build-engine --preview-vae; vae.decode_preview)"]
            if m.source.preview_vae
            else []
        ),
        *([f"embeddings   {', '.join(m.source.embeddings)}"] if m.source.embeddings else []),
        *([f"LoRA fused   {', '.join(m.source.loras)}"] if m.source.loras else []),
        *(
            [f"LoRA runtime {', '.join(mapped)} (load_lora_weights, generate --lora; ONNX Runtime)"]
            if mapped
            else []
        ),
        *[
            f"controlnet   {name}: {info.path} (build-engine --controlnet)"
            for name, info in m.controlnets.items()
        ],
        *[
            f"adapter      {name}: {info.path} (build-engine --adapter; T2I-Adapter)"
            for name, info in m.adapters.items()
        ],
        *(
            [
                f"ip-adapter   {m.source.ip_adapter} ({len(m.unet.ip_adapter_layers or ())} layers; set_ip_adapter_scale)"
            ]
            if m.source.ip_adapter
            else []
        ),
        f"prediction   {m.prediction_type}",
        f"sizes        {ranges} (pixels; batch per prompt batch); {', '.join(extra)}",
    ]
    if m.tools:
        lines.append("built with   " + ", ".join(f"{k} {v}" for k, v in m.tools.items() if v))
    lines.append("components")
    for name, record in bundle.components.items():
        dims = ", ".join(f"{k} {range_text(v)}" for k, v in record.dims.items())
        backends = _record_labels(record)
        lines.append(
            f"  {name:<15} {record.precision:<5} {human_bytes(record.bytes):>9}  [{', '.join(backends)}]  {dims}"
        )
    lines.append("providers")
    for provider, status in provider_support(bundle).items():
        lines.append(f"  {provider:<9} {status}")
    return "\n".join(lines)


def _vae_class_line(vae: VaeInfo) -> str:
    tiny = " (tiny VAE: TAESD-style, fast and approximate)" if vae.class_name == "AutoencoderTiny" else ""
    return f"vae class    {vae.class_name}{tiny}, scaling factor {vae.scaling_factor:g}"


def _record_labels(record: ComponentRecord) -> list[str]:
    """The engines a component has, as each backend lists them (the exported graph first)."""
    from sdrt.runtime.backends import BACKENDS

    fields = list(ComponentRecord.__dataclass_fields__)  # in the record's order: graphs, ORT, IR, plans
    ordered = sorted(BACKENDS.values(), key=lambda b: fields.index(b.record_field or "onnx"))
    return list(dict.fromkeys(label for backend in ordered for label in backend.record_labels(record)))


def _checkpoint_line(checkpoint: dict) -> str:
    """A single-file source: its size, hash and the config folder it was read with."""
    size = human_bytes(int(checkpoint.get("bytes", 0)))
    sha = str(checkpoint.get("sha256", "?"))
    return f"checkpoint   single file, {size}, sha256 {sha}, read with --config {checkpoint.get('config')}"


def _config_option(bundle: Bundle) -> str:
    checkpoint = bundle.manifest.source.checkpoint
    return f" --config {checkpoint['config']}" if checkpoint and checkpoint.get("config") else ""


def verify_bundle(bundle: Bundle) -> str:
    """Every file each component records, checked against its size and sha256; a ``BundleError`` lists
    what does not match, with the command that rebuilds it."""
    problems = [
        f"{name}: {p}"
        for name, record in bundle.components.items()
        for p in file_problems(bundle.path, record, hashes=True)
    ]
    unrecorded = [name for name, record in bundle.components.items() if not record.checksums]
    if problems:
        raise BundleError(
            f"{bundle.path} is damaged: {'; '.join(problems)}. Rebuild it with: "
            f"build-engine {bundle.manifest.source.path} -o {bundle.path}{_config_option(bundle)}"
        )
    checked = sum(len(record.checksums) for record in bundle.components.values())
    note = (
        f"; no checksums recorded for {', '.join(unrecorded)} (built before sdrt recorded them)"
        if unrecorded
        else ""
    )
    return f"verified     {checked} files match their sizes and sha256{note}"
