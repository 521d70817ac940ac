"""Export an SD1.5-sized UNet (the real config, random weights) with external data, and validate it.

    python -m tests.export.sd15_unet OUT_DIR [--json FILE]

Prints and writes: parameters, export / clean-up / validation seconds, graph and external-data
sizes, the validation figure, and the process's peak RSS (resource.getrusage). Run by the slow test.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

SD15_UNET_CONFIG = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-05,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}


def run(out_dir: Path) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    from sdrt.export.model.modules import ModulesModel
    from sdrt.export.onnx.cleanup import clean_onnx
    from sdrt.export.onnx.trace import trace_to_onnx
    from sdrt.export.onnx.validate import reference_cases, validate_onnx
    from sdrt.runtime.components import UNet

    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG).eval()
    params = sum(p.numel() for p in unet.parameters())
    raw = out_dir / "raw" / "unet.onnx"
    final = out_dir / "onnx" / "unet.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    figures: dict = {"parameters": params}

    t = time.perf_counter()
    ranges = {"batch": (1, 2), "latent_height": (32, 64), "latent_width": (32, 64)}
    spec = UNet.graph(
        ModulesModel("sd1", {"unet": unet}), ranges, {"batch": 2, "latent_height": 64, "latent_width": 64}
    )
    trace_to_onnx(UNet, unet, spec, raw)
    figures["trace_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    size, external = clean_onnx(raw, final, keep_outputs=list(spec.outputs))
    figures["cleanup_seconds"] = round(time.perf_counter() - t, 1)
    for p in raw.parent.iterdir():
        p.unlink()
    figures.update(
        onnx_bytes=size,
        external_data=external,
        graph_file_bytes=final.stat().st_size,
        data_files=sorted(p.name for p in final.parent.iterdir()),
    )

    t = time.perf_counter()
    cases = reference_cases(UNet, unet, spec, spec.validation_sizes())
    del unet
    validation = validate_onnx(final, cases, component="unet", precision="fp32")
    figures["validation_seconds"] = round(time.perf_counter() - t, 1)
    figures["validation"] = {k: validation[k] for k in ("metric", "value", "threshold", "shapes")}
    figures["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t = time.perf_counter()
    figures = run(args.out_dir)
    figures["total_seconds"] = round(time.perf_counter() - t, 1)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
