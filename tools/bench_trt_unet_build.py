"""CPU-only TensorRT(-RTX) build of an SD1.5-sized UNet plan: time, plan size, peak RSS.

Two stages, so the build's peak memory is measured on its own:

    python -m tools.bench_trt_unet_build export WORK   # SD1.5 UNet config, random weights -> fp16 ONNX
    /usr/bin/time -v python -m tools.bench_trt_unet_build build WORK [--precision fp16]

The export uses sdrt.export's own exporter, clean-up and fp16 conversion (static batch 2 = one prompt
with classifier-free guidance, 512x512 = 64x64 latents). Needs torch/diffusers for ``export`` and a
TensorRT module (TensorRT-RTX builds with no GPU) for ``build``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path


def export(work: Path, precision: str) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    from sdrt.export.model.modules import ModulesModel
    from sdrt.export.onnx.cleanup import clean_onnx
    from sdrt.export.onnx.fp16 import convert_to_fp16
    from sdrt.export.onnx.trace import trace_to_onnx
    from sdrt.runtime.bundle.manifest import Manifest, Shapes, Source, VaeInfo, write_manifest
    from sdrt.runtime.bundle.records import ComponentRecord
    from sdrt.runtime.components import UNet
    from tests.export.sd15_unet import SD15_UNET_CONFIG

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG).eval()
    started = time.perf_counter()
    raw = work / "raw" / "unet.onnx"
    sizes = {"batch": 2, "latent_height": 64, "latent_width": 64}
    spec = UNet.graph(
        ModulesModel("sd1", {"unet": unet}), {d: (v, v) for d, v in sizes.items()}, sizes
    ).frozen()
    trace_to_onnx(UNet, unet, spec, raw)
    del unet
    fp32 = work / "fp32" / "unet.onnx"
    fp32.parent.mkdir(parents=True, exist_ok=True)
    clean_onnx(raw, fp32, keep_outputs=list(spec.outputs))
    final = work / "onnx" / "unet.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    if precision == "fp16":
        size, external = convert_to_fp16(fp32, final)
    else:
        size, external = clean_onnx(raw, final, keep_outputs=list(spec.outputs))
    record = ComponentRecord(
        name="unet",
        class_name="UNet2DConditionModel",
        onnx="onnx/unet.onnx",
        precision=precision,
        inputs=spec.inputs,
        outputs=spec.outputs,
        dims=spec.dims,
        trace=spec.trace,
        static=True,
        external_data=external,
        bytes=size,
    )
    shapes = Shapes(batch=(1, 1), height=(512, 512), width=(512, 512), default=(512, 512), static=True)
    manifest = Manifest(
        model_type="sd1",
        pipeline_class="StableDiffusionPipeline",
        source=Source("SD15_UNET_CONFIG (random weights)"),
        shapes=shapes,
        vae=VaeInfo(),
        components={"unet": record},
    )
    write_manifest(work, manifest)
    print(
        f"exported {final} ({size / 1e9:.2f} GB, external data {external}) in {time.perf_counter() - started:.0f} s"
    )


def build(work: Path, precision: str, optimization_level: int) -> None:
    from sdrt.export.tensorrt.build import build_trt_plans
    from sdrt.export.tensorrt.plan import peak_rss_gb
    from sdrt.runtime.bundle.manifest import read_manifest

    manifest = read_manifest(work)
    started = time.perf_counter()
    manifest = build_trt_plans(
        work, manifest, components=["unet"], precision=precision, optimization_level=optimization_level,
        isolate=False, force=True,
    )  # fmt: skip
    plan = next(iter(manifest.components["unet"].plans.values())).to_json()
    print(json.dumps({**{k: plan[k] for k in ("file", "bytes", "build_seconds", "precision", "trt_module", "trt_version")},
                      "wall_seconds": round(time.perf_counter() - started, 1), "peak_rss_gb": round(peak_rss_gb(), 2)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=("export", "build"))
    parser.add_argument("work", type=Path)
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--optimization-level", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("sdrt.tensorrt").setLevel(logging.WARNING)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "export":
        export(args.work, args.precision)
    else:
        build(args.work, args.precision, args.optimization_level)


if __name__ == "__main__":
    main()
