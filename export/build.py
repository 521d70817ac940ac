"""``export_pipeline``: a diffusers folder -> a validated engine bundle (what ``build-engine`` runs).

Per component: load (fp32) -> trace to ONNX -> clean up -> fp16 (GPU builds) -> validate against
torch -> engines (ORT-optimized graph, or TensorRT plans after all components). Everything is
written into a temporary sibling of the output and swapped in at the end (see ``bundle``), and a
component whose inputs hash (weights + options + tool versions) is unchanged is taken over from the
previous bundle instead of being rebuilt.
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrt.export.model.folder import ModelFolder, inspect_model_folder
from sdrt.export.model.hashing import files_sha256, json_sha256, tool_versions
from sdrt.runtime.bundle.manifest import FORMAT_VERSION, write_manifest

from . import bundle_writer as bundle_io
from .engines import ENGINE_BACKENDS, build_engines, ort_stage
from .errors import OptionError
from .shapes import BuildShapes, component_ranges, component_trace, resolve_shapes

log = logging.getLogger(__name__)

EXPORTER_REVISION = 1  # bump when the export code changes what it writes: invalidates skip-if-unchanged
PRECISIONS = ("fp32", "fp16")
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
    manifest: dict[str, Any]
    components: list[ComponentReport] = field(default_factory=list)


def _model_info(folder: ModelFolder) -> dict[str, Any]:
    configs = folder.configs
    unet = configs["unet"]
    info: dict[str, Any] = {"prediction_type": configs["scheduler"].get("prediction_type", "epsilon")}
    sample_size = unet.get("sample_size", 64)
    info["unet"] = {
        "class": folder.classes["unet"][1],
        "in_channels": unet.get("in_channels", 4),
        "out_channels": unet.get("out_channels", 4),
        "sample_size": sample_size,
        "addition_embed_type": unet.get("addition_embed_type"),
        "time_cond_proj_dim": unet.get("time_cond_proj_dim"),
    }
    if "vae" in configs:
        vae = configs["vae"]
        info["vae"] = {
            "scaling_factor": vae.get("scaling_factor", 0.18215),
            "shift_factor": vae.get("shift_factor"),
            "latent_channels": vae.get("latent_channels", 4),
            "scale_factor": 2 ** (len(vae["block_out_channels"]) - 1),
            "force_upcast": vae.get("force_upcast", False),
        }
    else:
        info["vae"] = None
    if "text_encoder" in configs:
        index = folder.model_index
        info["text"] = {
            "max_length": configs["text_encoder"].get("max_position_embeddings", 77),
            "tokenizers": [
                t for t in ("tokenizer", "tokenizer_2") if t.replace("tokenizer", "text_encoder") in configs
            ],
            "force_zeros_for_empty_prompt": index.get("force_zeros_for_empty_prompt"),
            "requires_aesthetics_score": index.get("requires_aesthetics_score"),
        }
    else:
        info["text"] = None
    return info


def _shapes_for(
    folder: ModelFolder,
    *,
    height: int | None,
    width: int | None,
    min_size: int | None,
    max_size: int | None,
    batch: int,
    max_batch: int | None,
    static: bool,
) -> BuildShapes:
    unet = folder.configs["unet"]
    scale = 2 ** (len(folder.configs["vae"]["block_out_channels"]) - 1) if "vae" in folder.configs else 1
    sample = unet.get("sample_size", 64)
    sample_h, sample_w = (sample, sample) if isinstance(sample, int) else sample
    multiple = max(8, scale * 2 ** (len(unet["block_out_channels"]) - 1))
    return resolve_shapes(
        default_size=(sample_h * scale, sample_w * scale),
        multiple=multiple,
        scale=scale,
        height=height,
        width=width,
        min_size=min_size,
        max_size=max_size,
        batch=batch,
        max_batch=max_batch,
        static=static,
    )


def _component_precision(name: str, precision: str, vae_fp32: bool) -> str:
    return "fp32" if vae_fp32 and name.startswith("vae_") else precision


def _export_kwargs(name: str, ranges: dict, trace: dict, *, static: bool, opset: int, device: str) -> dict:
    kwargs: dict[str, Any] = {"static": static, "trace": trace, "opset": opset, "device": device}
    kwargs.update(
        {
            k: v
            for k, v in ranges.items()
            if k in ("batch", "latent_height", "latent_width", "height", "width")
        }
    )
    if name == "vae_encoder":
        kwargs.pop("latent_height", None)
        kwargs.pop("latent_width", None)
    return kwargs


def _build_component(
    folder: ModelFolder,
    name: str,
    work: Path,
    scratch: Path,
    *,
    ranges: dict,
    trace: dict,
    shapes: BuildShapes,
    precision: str,
    static: bool,
    opset: int,
    device: str,
    validate: bool,
):
    """Export one component into ``work/onnx``; returns (record, validation cases, fp32 graph path)."""
    from sdrt.export.model.folder import load_component
    from sdrt.export.onnx.cleanup import clean_onnx
    from sdrt.export.onnx.fp16 import convert_to_fp16

    from .onnx import trace as comp

    started = time.perf_counter()
    module = load_component(folder, name, device=device)
    raw = scratch / name / "raw" / f"{name}.onnx"
    exporters = {
        "text_encoder": comp.export_text_encoder,
        "text_encoder_2": comp.export_text_encoder_2,
        "unet": comp.export_uncond_unet if folder.model_type == "uncond" else comp.export_unet,
        "vae_encoder": comp.export_vae_encoder,
        "vae_decoder": comp.export_vae_decoder,
    }
    kwargs = _export_kwargs(name, ranges, trace, static=static, opset=opset, device=device)
    if name == "text_encoder" and folder.model_type.startswith("sdxl"):
        kwargs["penultimate"] = True
    log.info("%s: tracing to ONNX at %s", name, trace)
    spec = exporters[name](module, raw, **kwargs)
    spec.component_class = folder.classes[comp_source(name)][1]

    final = work / "onnx" / f"{name}.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    fp32_path = final if precision == "fp32" else scratch / name / f"{name}.fp32.onnx"
    log.info("%s: cleaning up the graph", name)
    size, external = clean_onnx(raw, fp32_path, keep_outputs=list(spec.outputs))
    shutil.rmtree(raw.parent, ignore_errors=True)
    if precision == "fp16":
        log.info("%s: converting to fp16", name)
        size, external = convert_to_fp16(fp32_path, final)

    cases = None
    validation = None
    if validate:
        from sdrt.export.onnx.specs import validation_shapes
        from sdrt.export.onnx.validate import reference_cases, validate_onnx

        opt = component_trace(name, shapes, spec.dims, uncond=folder.model_type == "uncond")
        checks = validation_shapes(spec, opt=opt)
        reference = comp.torch_module_for(name, _default_attention(module), spec)
        log.info("%s: validating against torch at %s", name, checks)
        cases = reference_cases(reference, spec, checks, device=device)
        validation = validate_onnx(final, cases, component=name, precision=precision)
    del module
    gc.collect()
    record = {
        "class": spec.component_class,
        "onnx": f"onnx/{name}.onnx",
        "external_data": external,
        "bytes": size,
        "precision": precision,
        **spec.manifest_io(),
        "dims": {k: list(v) for k, v in spec.dims.items()},
        "trace": dict(spec.trace),
        "static": spec.static,
        "opset": opset,
        "validation": validation,
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    return record, cases, fp32_path


def comp_source(name: str) -> str:
    from sdrt.export.model.folder import SOURCE

    return SOURCE[name]


def _default_attention(module):
    """The module with its library's default attention back (the reference is plain diffusers/transformers)."""
    from sdrt.export.onnx.matmul_attention import restore_default_attention

    return restore_default_attention(module)


def _figure(record: dict[str, Any]) -> str:
    validation = record.get("validation")
    if not validation:
        return "not validated"
    value = validation["value"]
    if validation["metric"] == "psnr_db":
        return f"PSNR {value:.1f} dB" if isinstance(value, float) else f"PSNR {value}"
    return f"rel.err {value:.2e}" if isinstance(value, float) else f"rel.err {value}"


def export_pipeline(
    model_dir: str | Path,
    output_dir: str | Path,
    *,
    backend: str = "ort",
    precision: str = "fp32",
    components: list[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    batch: int = 1,
    max_batch: int | None = None,
    static: bool = False,
    device: str = "cpu",
    export_device: str | None = None,
    validate: bool = True,
    force: bool = False,
    vae_fp32: bool = False,
    opset: int = 17,
    progress: bool = True,
    trt_options: dict[str, Any] | None = None,
) -> BuildReport:
    """Export a diffusers model folder into the engine bundle ``output_dir`` (atomically).

    ``backend``: ``"onnx"`` (graphs only), ``"ort"`` (plus ORT-optimized graphs for ``device``'s
    provider: ``"cuda"`` builds fused fp16/fp32 graphs for the CUDA provider, also on a machine without
    a GPU) or ``"tensorrt"`` (plus plans, via ``sdrt.export.tensorrt_build``; ``trt_options`` are
    its keyword options). ``export_device`` is where torch traces and computes the validation
    references (default: ``device`` when torch can use it, else ``"cpu"``).
    Raises :class:`~sdrt.export.errors.ExportError` subclasses on bad input or
    failed validation, leaving any previous bundle as it was.
    """
    if backend not in ENGINE_BACKENDS:
        raise OptionError(f"backend {backend!r} is not one of {', '.join(ENGINE_BACKENDS)}")
    if precision not in PRECISIONS:
        raise OptionError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device not in DEVICES:
        raise OptionError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    if opset < 17:
        raise OptionError(f"opset {opset} is below 17; the exported graphs need opset 17 or later")
    folder = inspect_model_folder(model_dir)
    names = folder.exportable
    if components:
        unknown = [c for c in components if c not in names]
        if unknown:
            raise OptionError(
                f"unknown component(s) {unknown} for this {folder.model_type} model; choose from {names}"
            )
        names = [n for n in names if n in components]
    shapes = _shapes_for(
        folder,
        height=height,
        width=width,
        min_size=min_size,
        max_size=max_size,
        batch=batch,
        max_batch=max_batch,
        static=static,
    )
    export_device = resolve_export_device(device, export_device)

    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    tools = tool_versions()
    uncond = folder.model_type == "uncond"
    old = None if force else bundle_io.read_old_manifest(output_dir)
    old_components = (
        (old or {}).get("components", {}) if (old or {}).get("format_version") == FORMAT_VERSION else {}
    )
    weights = {n: folder.hashed_files(n) for n in folder.exportable}

    reports: list[ComponentReport] = []
    with bundle_io.BundleWriter(output_dir) as work:
        scratch = work / ".scratch"
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "sdrt_version": tools["sdrt"],
            "model_type": folder.model_type,
            "pipeline_class": folder.pipeline_class,
            "source": {"path": str(folder.path), "weights_sha256": folder.weights_sha256()},
            "tools": tools,
            **_model_info(folder),
            "shapes": shapes.manifest(),
            "backend": backend,
            "components": {},
        }
        bundle_io.carry_timing_cache(output_dir, work)
        references: dict[str, Any] = {}
        fp32_graphs: dict[str, Path] = {}
        bar = tqdm(folder.exportable, desc="build-engine", unit="component", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            ranges = component_ranges(name, shapes, uncond=uncond)
            trace = component_trace(name, shapes, ranges, uncond=uncond)
            prec = _component_precision(name, precision, vae_fp32)
            inputs_hash = json_sha256(
                {
                    "weights": files_sha256(weights[name], root=folder.path),
                    "component": name,
                    "model_type": folder.model_type,
                    "ranges": ranges,
                    "trace": trace,
                    "static": static,
                    "precision": prec,
                    "opset": opset,
                    "device": device,
                    **({"export_device": export_device} if export_device != device else {}),
                    "validate": validate,
                    "exporter_revision": EXPORTER_REVISION,
                    "tools": tools,
                }
            )
            previous = old_components.get(name)
            if previous and previous.get("inputs_hash") == inputs_hash:
                if bundle_io.reuse_component(output_dir, work, previous):
                    manifest["components"][name] = previous
                    if backend == "ort" and (previous.get("ort") or {}).get("provider") != device:
                        previous["ort"] = ort_stage(work, name, previous, provider=device)
                    status = "unchanged" if name in names else "kept"
                    log.info("%s: unchanged since the last build, taken over", name)
                    reports.append(
                        ComponentReport(name, status, previous.get("bytes", 0), _figure(previous), 0.0)
                    )
                    continue
            if name not in names:
                continue
            record, cases, fp32_path = _build_component(
                folder,
                name,
                work,
                scratch,
                ranges=ranges,
                trace=trace,
                shapes=shapes,
                precision=prec,
                static=static,
                opset=opset,
                device=export_device,
                validate=validate,
            )
            record["inputs_hash"] = inputs_hash
            manifest["components"][name] = record
            references[name] = cases
            fp32_graphs[name] = fp32_path
            if backend == "ort":
                record["ort"] = ort_stage(
                    work, name, record, provider=device, fp32_graph=fp32_path, cases=cases
                )
                if device == "cuda" and cases:
                    from sdrt.export.ort.gate import gate_cuda_graph

                    record["ort"]["validation"] = gate_cuda_graph(
                        record["ort"],
                        component=name,
                        precision=prec,
                        fp32_graph=fp32_path,
                        cases=cases,
                        scratch=scratch / name,
                    )
            reports.append(
                ComponentReport(name, "built", record["bytes"], _figure(record), record["export_seconds"])
            )
        bar.close()
        copy_support_files(folder, work)
        write_manifest(work, manifest)
        if backend == "tensorrt":
            manifest = build_engines(
                work, backend="tensorrt", components=names, precision=precision, trt_options=trt_options
            )
        shutil.rmtree(scratch, ignore_errors=True)
    return BuildReport(bundle_dir=output_dir, manifest=manifest, components=reports)


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


def copy_support_files(folder: ModelFolder, work: Path) -> None:
    """The scheduler config and tokenizer files, copied from the model folder."""
    (work / "scheduler").mkdir(parents=True, exist_ok=True)
    shutil.copy2(
        folder.path / "scheduler" / "scheduler_config.json", work / "scheduler" / "scheduler_config.json"
    )
    for tokenizer in ("tokenizer", "tokenizer_2"):
        if tokenizer.replace("tokenizer", "text_encoder") in folder.classes:
            bundle_io.copy_tokenizer(folder.path / tokenizer, work / tokenizer)
