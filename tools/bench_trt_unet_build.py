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

    from sdrt.export.onnx.cleanup import clean_onnx
    from sdrt.export.onnx.fp16 import convert_to_fp16
    from sdrt.export.onnx.trace import export_unet
    from tests.export.sd15_unet import SD15_UNET_CONFIG

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG).eval()
    started = time.perf_counter()
    raw = work / "raw" / "unet.onnx"
    spec = export_unet(unet, raw, batch=(2, 2), latent_height=(64, 64), latent_width=(64, 64), static=True)
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
    record = {
        "onnx": "onnx/unet.onnx",
        "external_data": external,
        "bytes": size,
        "precision": precision,
        **spec.manifest_io(),
        "dims": {k: list(v) for k, v in spec.dims.items()},
        "static": True,
    }
    manifest = {
        "format_version": 1,
        "unet": {"sample_size": 64},
        "vae": {"scale_factor": 8},
        "components": {"unet": record},
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(
        f"exported {final} ({size / 1e9:.2f} GB, external data {external}) in {time.perf_counter() - started:.0f} s"
    )


def build(work: Path, precision: str, optimization_level: int) -> None:
    from sdrt.export.tensorrt.build import build_trt_plans
    from sdrt.export.tensorrt.plan import peak_rss_gb

    manifest = json.loads((work / "manifest.json").read_text())
    started = time.perf_counter()
    manifest = build_trt_plans(
        work, manifest, components=["unet"], precision=precision, optimization_level=optimization_level,
        isolate=False, force=True,
    )  # fmt: skip
    plan = next(iter(manifest["components"]["unet"]["plans"].values()))
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
