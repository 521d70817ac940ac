"""``export_pipeline``: a diffusers folder -> a validated engine bundle (what ``build-engine`` runs).

Check the options and the model folder; decide per component what to do (``jobs``: build, take
over from the bundle being replaced, or refuse to lose it); build into a temporary sibling of the
output and swap it in at the end (``bundle_writer``); then the TensorRT plans, if asked for.
"""

from __future__ import annotations

import errno
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle import swap
from sdrt.runtime.bundle.integrity import describe_files
from sdrt.runtime.bundle.manifest import Manifest, Shapes, Source, read_previous_manifest, write_manifest
from sdrt.runtime.bundle.records import ComponentRecord

from . import bundle_writer
from .component_build import build_component
from .engines import export_backend, prepare_cpu_engines
from .errors import OptionError, OutputError
from .jobs import ComponentJob, ExportSettings, plan_jobs
from .model import info
from .model.adapter import adapter_feature_count, adapter_infos
from .model.controlnet import controlnet_infos
from .model.folder import ModelFolder
from .model.hashing import tool_versions
from .model.single_file import checkpoint_as_folder
from .options import BuildOptions, build_options
from .prepare import model_folder, parts_added
from .shapes import resolve_shapes
from .stages import stage_of

log = logging.getLogger(__name__)

_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)
DEVICES = ("cpu", "cuda")


@dataclass
class ComponentReport:
    name: str
    status: str  # "built" | "unchanged" | "kept"
    bytes: int
    figure: str
    seconds: float


@dataclass
class BuildReport:
    bundle_dir: Path
    manifest: Manifest
    components: list[ComponentReport] = field(default_factory=list)


def export_pipeline(
    model_dir: str | Path, output_dir: str | Path, options: BuildOptions | None = None, **keywords: Any
) -> BuildReport:
    """Export a diffusers model folder, or an original-layout single file (read by diffusers' ``from_single_file``
    with ``options.config``, a diffusers folder; a pickle only with ``options.allow_pickle``), into the bundle
    ``output_dir``.

    ``options``: a :class:`~sdrt.export.options.BuildOptions` (each field documented there); ``keywords``
    replace its fields, or the defaults' when no ``options`` is given:
    ``export_pipeline(model, out, backend="onnx", precision="fp16")``.
    Raises :class:`~sdrt.export.errors.ExportError` on bad input or failed validation (old bundle kept).
    """
    options = build_options(options, **keywords)
    _check_options(options.backend, options.precision, options.device, options.opset, options.trt_options)
    output_dir = Path(output_dir)
    bundle_writer.check_output(output_dir)
    settings, precision = _settings(options)
    with checkpoint_as_folder(
        model_dir,
        config=options.config,
        allow_pickle=options.allow_pickle,
        scratch_dir=output_dir.parent,
        vae=options.vae,
    ) as (model_dir, checkpoint):
        folder = model_folder(model_dir, options, checkpoint)
        shapes = resolve_shapes(*info.size_units(folder), options, folder.family.guidance_rows)
        manifest, reports = _build(output_dir, folder, shapes, settings, options, precision)
    return BuildReport(bundle_dir=output_dir, manifest=manifest, components=reports)


def _build(
    output_dir: Path,
    folder: ModelFolder,
    shapes: Shapes,
    settings: ExportSettings,
    options: BuildOptions,
    precision: str,
) -> tuple[Manifest, list[ComponentReport]]:
    """The bundle written under the output's lock (a second build waits), with the embeddings and LoRAs of
    ``options`` put into the model in a scratch folder first; ``precision``: the ONNX graphs'."""
    try:
        with swap.output_lock(output_dir), parts_added(folder, options) as folder:
            swap.recover_swap(output_dir)
            manifest = _new_manifest(folder, shapes, options.backend, options.clip_skip)
            jobs = plan_jobs(
                folder,
                shapes,
                settings,
                precision=precision,
                vae_fp32=options.vae_fp32,
                tools=manifest.tools,
                options={
                    "clip_skip": options.clip_skip,
                    "controlnet_residuals": bool(manifest.controlnets) or None,
                    "adapter_residuals": adapter_feature_count(folder),
                    "prompt_chunks": options.prompt_chunks if (options.prompt_chunks or 1) > 1 else None,
                    "deepcache": folder.deepcache,
                    "ip_adapter": folder.ip_adapter.unet_option() if folder.ip_adapter else None,
                },
                asked=options.components,
                previous=None if options.force else read_previous_manifest(output_dir),
                previous_dir=output_dir,
            )
            return _write_bundle(folder, jobs, settings, manifest, output_dir, options, precision)
    except OSError as err:
        if err.errno not in _OUTPUT_ERRNOS:
            raise
        raise OutputError(
            f"cannot write the bundle {output_dir}: {err}; free space or choose another -o"
        ) from err


def _settings(options: BuildOptions) -> tuple[ExportSettings, str]:
    """The jobs' settings and the ONNX graphs' precision (OpenVINO runs the asked precision from fp32 graphs)."""
    precision = options.precision
    chosen = export_backend(options.backend, options.device)
    device = chosen.device if chosen.device_fixed else options.device
    settings = ExportSettings(
        chosen.name,
        device,
        resolve_export_device(device, options.export_device),
        options.static,
        options.opset,
        options.validate,
    )
    if chosen.graph_precision is not None:  # OpenVINO runs the asked precision from fp32 graphs
        settings.engine_precision, precision = precision, chosen.graph_precision
    return settings, precision


def _new_manifest(folder: ModelFolder, shapes: Shapes, backend: str, clip_skip: int | None) -> Manifest:
    """The new bundle's manifest, before any component is in it."""
    tools = tool_versions()
    manifest = Manifest(
        model_type=folder.model_type,
        pipeline_class=folder.pipeline_class,
        source=Source(
            str(folder.checkpoint.path if folder.checkpoint else folder.path),
            folder.weights_sha256(),
            vae=_vae_source(folder),
            preview_vae=str(folder.parts["vae_preview"]) if "vae_preview" in folder.parts else None,
            embeddings=list(folder.embeddings) or None,
            loras=list(folder.loras) or None,
            controlnets=[c.path for c in controlnet_infos(folder).values()] or None,
            adapters=[a.path for a in adapter_infos(folder).values()] or None,
            checkpoint=folder.checkpoint.record() if folder.checkpoint else None,
        ),
        controlnets=controlnet_infos(folder),
        adapters=adapter_infos(folder),
        shapes=shapes,
        unet=info.unet_info(folder),
        vae=info.vae_info(folder),
        text=info.text_info(folder),
        prediction_type=folder.configs["scheduler"].get("prediction_type", "epsilon"),
        backend=backend,
        tools=tools,
        sdrt_version=tools["sdrt"],
    )
    manifest.unet.deepcache_branch = folder.deepcache
    if folder.ip_adapter is not None:
        manifest.unet.ip_adapter_layers = list(folder.ip_adapter.layers)
        manifest.source.ip_adapter = str(folder.ip_adapter.file)
        manifest.source.image_encoder = str(folder.parts["image_encoder"])
    if manifest.text is not None:
        manifest.text.clip_skip = clip_skip
    return manifest


def _vae_source(folder: ModelFolder) -> str | None:
    if folder.vae_file is not None:
        return str(folder.vae_file)
    return str(folder.parts["vae"]) if "vae" in folder.parts else None


def _write_bundle(
    folder: ModelFolder,
    jobs: list[ComponentJob],
    settings: ExportSettings,
    manifest: Manifest,
    output_dir: Path,
    options: BuildOptions,
    precision: str,
) -> tuple[Manifest, list[ComponentReport]]:
    """Build into a temporary sibling of ``output_dir`` and swap it in; returns the final manifest."""
    trt_options = options.trt_options
    with bundle_writer.BundleWriter(output_dir) as work:
        reports = _run_jobs(folder, jobs, settings, manifest, output_dir, work, options.progress)
        info.copy_support_files(folder, work)
        write_manifest(work, manifest)
        stage = stage_of(export_backend(settings.backend, settings.device))
        if stage.after_manifest:  # TensorRT plans
            asked = [j.name for j in jobs if j.asked]
            manifest = stage.bundle(work, manifest, asked, precision, trt_options)
            for name in asked:
                manifest.components[name].checksums = describe_files(work, manifest.components[name])
            write_manifest(work, manifest)
        shutil.rmtree(work / ".scratch", ignore_errors=True)
    prepare_cpu_engines(output_dir, manifest)  # at the swapped-in bundle's paths
    return manifest, reports


def _run_jobs(
    folder: ModelFolder,
    jobs: list[ComponentJob],
    settings: ExportSettings,
    manifest: Manifest,
    previous_dir: Path,
    work: Path,
    progress: bool,
) -> list[ComponentReport]:
    """Take over or build each component into ``work``, recording it in ``manifest``."""
    from tqdm.auto import tqdm

    bundle_writer.carry_timing_cache(previous_dir, work)
    reports = []
    bar = tqdm(jobs, desc="build-engine", unit="component", disable=not progress)
    for job in bar:
        bar.set_postfix_str(job.name)
        if job.previous is not None:
            record = _take_over(job.previous, settings, previous_dir, work)
            status, seconds = ("unchanged" if job.asked else "kept"), 0.0
            log.info("%s: unchanged since the last build, taken over", job.name)
        elif job.asked:
            record = build_component(folder, job, settings, work, work / ".scratch")
            status, seconds = "built", record.export_seconds
        else:
            continue
        record.checksums = describe_files(work, record)
        manifest.components[job.name] = record
        reports.append(ComponentReport(job.name, status, record.bytes, _figure(record), seconds))
    bar.close()
    return reports


def _take_over(
    record: ComponentRecord, settings: ExportSettings, previous_dir: Path, work: Path
) -> ComponentRecord:
    """The previous bundle's files of ``record``, linked into ``work``; its ORT graph or OpenVINO IR redone
    for another provider or precision (not validated: no torch references are made for a kept component)."""
    bundle_writer.link_files(previous_dir, work, record.files())
    stage = stage_of(export_backend(settings.backend, settings.device))
    if not stage.current(record, settings):
        stage.component(work, record, settings)
    return record


def _figure(record: ComponentRecord) -> str:
    """The validation figures of the exported graph, and of its OpenVINO IR when it has one."""
    figures = [_validation_text(record.validation)]
    if record.openvino is not None and record.openvino.validation:
        figures.append(f"openvino {_validation_text(record.openvino.validation)}")
    return "; ".join(figures)


def _validation_text(validation: dict[str, Any] | None) -> str:
    if not validation:
        return "not validated"
    value, psnr = validation["value"], validation["metric"] == "psnr_db"
    if not isinstance(value, float):
        return f"PSNR {value} dB" if psnr else f"rel.err {value}"
    return f"PSNR {value:.1f} dB" if psnr else f"rel.err {value:.2e}"


def _check_options(backend: str, precision: str, device: str, opset: int, trt_options: dict | None) -> None:
    chosen = export_backend(backend, device)
    for option, value, choices in (("precision", precision, chosen.precisions), ("device", device, DEVICES)):
        if value not in choices:
            raise OptionError(
                f"{option} {value!r} is not one of {', '.join(choices)} (for --backend {backend})"
            )
    if opset < 17:
        raise OptionError(f"opset {opset} is below 17; the exported graphs need opset 17 or later")
    # the engine libraries are checked before minutes of export, not after
    stage_of(chosen).check(trt_options)
    stage_of(chosen).check_device(chosen, device)


def resolve_export_device(device: str, export_device: str | None = None) -> str:
    """Where torch exports: ``export_device`` if given, else ``device`` when torch can use it, else cpu.

    ``device`` also names the ONNX Runtime provider the ``ort`` graphs are built for; building them for
    CUDA needs no GPU (fp32 export on the CPU, then fusion and fp16 conversion of the graph).
    """
    if export_device is not None:
        if export_device not in DEVICES:
            raise OptionError(f"export device {export_device!r} is not one of {', '.join(DEVICES)}")
        if export_device == "cuda" and not _torch_has_cuda():
            raise OptionError("export device 'cuda': torch sees no CUDA GPU here; export on 'cpu'")
        return export_device
    if device == "cuda" and not _torch_has_cuda():
        log.info(
            "--device cuda: torch sees no CUDA GPU here, so torch exports on the CPU (fp32) and the graphs "
            "are optimized for ONNX Runtime's CUDA provider without one"
        )
        return "cpu"
    return device


def _torch_has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
