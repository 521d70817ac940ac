"""Engines added to a bundle: ``build_engines`` runs a backend's export stage (``stages.py``) on a written
bundle (``export_pipeline`` runs them inside its temporary bundle folder), ``export_backend`` is
``--backend``'s lookup, ``prepare_cpu_engines`` fills this machine's engine caches after a build.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sdrt.runtime.backends import Backend, backend_names, get_backend
from sdrt.runtime.bundle.integrity import describe_files
from sdrt.runtime.bundle.manifest import Manifest, read_manifest, write_manifest
from sdrt.runtime.errors import InputError

from .errors import OptionError

log = logging.getLogger(__name__)


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
