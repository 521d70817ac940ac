"""Engine stage of a bundle: ORT-optimized graphs (``--backend ort``) or TensorRT plans.

``export_pipeline`` runs it inside its temporary bundle folder; ``build_engines`` can also be run on
an existing bundle to add engines (ORT graphs are written through a temporary name and the manifest
last, so a reader sees either the old or the new state).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sdrt.runtime.backends import Backend, backend_names, get_backend
from sdrt.runtime.bundle.integrity import describe_files
from sdrt.runtime.bundle.manifest import Manifest, read_manifest, write_manifest
from sdrt.runtime.bundle.records import ComponentRecord, OrtRecord
from sdrt.runtime.components import component_class
from sdrt.runtime.errors import InputError

from .errors import OptionError

log = logging.getLogger(__name__)


def ort_stage(
    bundle_dir: Path,
    record: ComponentRecord,
    *,
    provider: str,
    fp32_graph: Path | None = None,
    cases: list | None = None,
) -> OrtRecord:
    """Write ``ort/<name>.onnx`` optimized for ``provider``; validate it when ``cases`` are given and
    the provider is available here."""
    import onnxruntime as ort

    from .onnx.validate import validate_onnx
    from .ort.optimize import optimize_for_ort

    started = time.perf_counter()
    file = f"ort/{record.name}.onnx"
    log.info("%s: optimizing for ONNX Runtime (%s)", record.name, provider)
    details = optimize_for_ort(
        bundle_dir / record.onnx,
        bundle_dir / file,
        component=component_class(record.name, record.class_name),
        provider=provider,
        precision=record.precision,
        src_fp32=fp32_graph,
    )
    result = OrtRecord(file=file, provider=details.pop("provider"), details=details)
    wanted = "CUDAExecutionProvider" if provider == "cuda" else "CPUExecutionProvider"
    if cases and wanted in ort.get_available_providers():
        result.validation = validate_onnx(
            bundle_dir / file,
            cases,
            component=f"{record.name} (ort/{provider})",
            precision=record.precision,
            providers=[wanted],
        )
    elif cases:
        log.warning("%s: %s not available here; the ORT graph is not validated", record.name, wanted)
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def build_engines(
    bundle_dir: str | Path,
    *,
    backend: str,
    components: list[str] | None = None,
    precision: str = "fp16",
    provider: str = "cpu",
    trt_options: dict[str, Any] | None = None,
) -> Manifest:
    """Add engines for ``backend`` (a name of ``sdrt.runtime.backends``, or ``ort`` with ``provider``'s
    device; OpenVINO's ``precision`` is fp32, bf16 or auto) to the bundle; returns the new manifest."""
    from .jobs import ExportSettings
    from .stages import stage_of

    chosen = export_backend(backend, provider)
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    if chosen.export_stage is None:
        return manifest
    names = components or list(manifest.components)
    stage = stage_of(chosen)
    device = chosen.device if chosen.device_fixed else provider
    settings = ExportSettings(chosen.name, device, "cpu", manifest.shapes.static, 17, False, precision)
    for name in names:
        stage.component(bundle_dir, manifest.components[name], settings)
    if stage.after_manifest:
        manifest = stage.bundle(bundle_dir, manifest, names, precision, trt_options)
    for name in names:
        record = manifest.components[name]
        record.checksums = describe_files(bundle_dir, record)
    write_manifest(bundle_dir, manifest)
    return manifest


def export_backend(name: str, device: str) -> Backend:
    """The backend ``--backend NAME --device DEVICE`` builds for, or an OptionError listing the names."""
    try:
        return get_backend(name, device)
    except InputError:
        raise OptionError(f"backend {name!r} is not one of {', '.join(backend_names(build=True))}") from None


def prepare_cpu_engines(bundle_dir: Path, manifest: Manifest) -> None:
    """Open each CPU engine of the written bundle once, so that the per-machine caches hold them and the
    first load after the build is quick: ONNX Runtime's *all*-level graphs (``runtime/engines/ort/session.py``)
    and OpenVINO's compiled models. Nothing when caching is off; a failure is only logged (the bundle is
    written, and loading it reports the problem)."""
    from sdrt.runtime.engines.cache import cache_root
    from sdrt.runtime.errors import SdrtError

    if cache_root() is None:
        return
    from sdrt.runtime.backends import BACKENDS

    for name, record in manifest.components.items():
        try:
            for backend in BACKENDS.values():
                backend.prepare_cache(bundle_dir, record)
        except SdrtError as error:
            log.warning("%s: could not prepare its engine for this machine: %s", name, error)
