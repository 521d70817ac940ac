"""Per-step cost of a ControlNet on the CPU (ONNX Runtime, fp32): separate engines vs one fused graph,
against the plain UNet, beside diffusers (torch) on the same modules.

    python -m benchmarks.controlnet_step OUT_DIR [--config sd15|mid] [--size 256] [--runs 3] [--threads N]
        [--json FILE]

Builds SD1.5's UNet (its real config, random seeded weights; ``--config mid`` halves every width) and a
ControlNet from it (``ControlNetModel.from_unet``, random zero-convolutions), traces four graphs with sdrt's
exporter (``trace_to_onnx`` + ``clean_onnx``):

- ``unet``: the plain UNet (what a bundle without ControlNet runs);
- ``unet_res``: the UNet taking the 12 + 1 residuals as inputs (sdrt's design);
- ``controlnet``: the ControlNet alone -> the residuals (sdrt's design);
- ``fused``: UNet and ControlNet in one graph with the control image and a scale as inputs (NVIDIA's demo).

Then times one guided step (batch 2, the size given) per design, every session loaded at once (ONNX
Runtime's default options: all graph optimizations, one intra-op thread per core), in interleaved rounds so
each design sees the same machine load: ``unet``; ``unet_res_zeros`` (the residual UNet fed zeros: what a
step outside the guidance window costs); ``controlnet_alone``; ``separate`` = ControlNet run, NumPy scaling,
residual UNet run; ``fused`` = one run. Last, diffusers on fresh modules (torch's default attention):
``unet(...)`` and ``controlnet(...)`` + ``unet(...)``. Graphs already in OUT_DIR are reused.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.components import ControlNet, UNet
from sdrt.runtime.components.graph import GraphSpec


class FusedControlNetUNet(UNet):
    """One graph: ControlNet -> residuals x scale -> UNet (the benchmark's model is ``(unet, controlnet)``)."""

    name = "fused"

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        unet, controlnet = model.unet, model.controlnet
        down, mid = controlnet(
            inputs["sample"],
            inputs["timestep"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            controlnet_cond=inputs["controlnet_cond"],
            return_dict=False,
        )
        scale = inputs["conditioning_scale"]
        noise = unet(
            inputs["sample"],
            inputs["timestep"],
            inputs["encoder_hidden_states"],
            down_block_additional_residuals=tuple(d * scale for d in down),
            mid_block_additional_residual=mid * scale,
            return_dict=False,
        )[0]
        return {"noise_pred": noise}


def _modules(config_name: str) -> tuple[Any, Any]:
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    from tests.export.sd15_unet import SD15_UNET_CONFIG

    config = dict(SD15_UNET_CONFIG)
    if config_name == "mid":
        config["block_out_channels"] = [c // 2 for c in config["block_out_channels"]]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config).eval()
    controlnet = ControlNetModel.from_unet(unet).eval()
    with torch.no_grad():
        for module in (controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block):
            for param in module.parameters():
                param.normal_(0.0, 0.02)
    return unet, controlnet


def _specs(unet: Any, controlnet: Any, latent: int) -> dict[str, tuple[type, Any, GraphSpec]]:
    from torch import nn

    from sdrt.export.model.modules import ModulesModel
    from sdrt.runtime.tensors import TensorSpec

    ranges = {"batch": (1, 2), "latent_height": (latent, latent), "latent_width": (latent, latent)}
    trace = {"batch": 2, "latent_height": latent, "latent_width": latent}
    model = ModulesModel("sd1", {"unet": unet, "controlnet": controlnet})
    plain = UNet.graph(model, ranges, trace)
    with_res = UNet.graph(model, ranges, trace, controlnet_residuals=True)
    cn = ControlNet.graph(model, ranges, trace)
    fused_inputs = {**plain.inputs, "controlnet_cond": cn.inputs["controlnet_cond"]}
    fused_inputs["conditioning_scale"] = TensorSpec("conditioning_scale", np.dtype(np.float32), (1,))
    fused = GraphSpec(fused_inputs, plain.outputs, dict(cn.dims), dict(cn.trace), derived=dict(cn.derived))
    pair = nn.Module()
    pair.unet, pair.controlnet = unet, controlnet
    return {
        "unet": (UNet, unet, plain),
        "unet_res": (UNet, unet, with_res),
        "controlnet": (ControlNet, controlnet, cn),
        "fused": (FusedControlNetUNet, pair, fused),
    }


def export_graphs(out: Path, config_name: str, latent: int) -> tuple[dict[str, Path], dict[str, Any]]:
    from sdrt.export.onnx.cleanup import clean_onnx
    from sdrt.export.onnx.trace import trace_to_onnx

    unet, controlnet = _modules(config_name)
    figures: dict[str, Any] = {
        "unet_parameters": sum(p.numel() for p in unet.parameters()),
        "controlnet_parameters": sum(p.numel() for p in controlnet.parameters()),
    }
    graphs = {}
    for name, (component, module, spec) in _specs(unet, controlnet, latent).items():
        started = time.perf_counter()
        raw, final = out / "raw" / name / f"{name}.onnx", out / name / f"{name}.onnx"
        if final.is_file():  # exported by an earlier run of the same settings
            graphs[name] = final
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        trace_to_onnx(component, module, spec, raw)
        clean_onnx(raw, final, keep_outputs=list(spec.outputs))
        for p in raw.parent.iterdir():
            p.unlink()
        graphs[name] = final
        figures[f"{name}_export_seconds"] = round(time.perf_counter() - started, 1)
        print(f"exported {name} in {figures[f'{name}_export_seconds']} s", flush=True)
    return graphs, figures


def _feeds(latent: int, width: int = 768) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "sample": rng.standard_normal((2, 4, latent, latent)).astype(np.float32),
        "timestep": np.full((2,), 500.0, np.float32),
        "encoder_hidden_states": rng.standard_normal((2, 77, width)).astype(np.float32),
        "controlnet_cond": rng.uniform(0, 1, (2, 3, latent * 8, latent * 8)).astype(np.float32),
    }


def _rounds(cases: dict[str, Any], runs: int) -> dict[str, dict[str, float]]:
    """One warm-up of each case, then ``runs`` rounds running every case once in turn (so that each sees the
    same machine load); median and min per case, in ms."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(runs):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {
        name: {"median_ms": round(1000 * statistics.median(t), 1), "min_ms": round(1000 * min(t), 1)}
        for name, t in times.items()
    }


def time_diffusers(config_name: str, latent: int, runs: int, threads: int | None) -> dict[str, Any]:
    """diffusers' modules as a pipeline runs them (fresh, with their default attention)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    unet, controlnet = _modules(config_name)
    f = {k: torch.from_numpy(v) for k, v in _feeds(latent).items()}

    def plain() -> None:
        unet(f["sample"], f["timestep"], f["encoder_hidden_states"])

    def with_controlnet() -> None:
        down, mid = controlnet(
            f["sample"], f["timestep"], f["encoder_hidden_states"], f["controlnet_cond"], return_dict=False
        )
        unet(
            f["sample"],
            f["timestep"],
            f["encoder_hidden_states"],
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        )

    with torch.no_grad():
        return _rounds({"unet": plain, "unet_controlnet": with_controlnet}, runs)


def time_ort(graphs: dict[str, Path], latent: int, runs: int, threads: int | None) -> dict[str, Any]:
    """Every graph in its own session, all loaded at once; the designs timed in interleaved rounds."""
    import onnxruntime as ort

    feeds = _feeds(latent)
    base = {k: feeds[k] for k in ("sample", "timestep", "encoder_hidden_states")}
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    sessions = {
        name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for name, path in graphs.items()
    }
    res_names = [i.name for i in sessions["unet_res"].get_inputs()][3:]
    zeros = dict(zip(res_names, sessions["controlnet"].run(None, feeds)))
    zeros = {k: np.zeros_like(v) for k, v in zeros.items()}
    fused_feeds = {**feeds, "conditioning_scale": np.ones((1,), np.float32)}

    def separate() -> None:
        outputs = sessions["controlnet"].run(None, feeds)
        scaled = {n: o * np.float32(1.0) for n, o in zip(res_names, outputs)}
        sessions["unet_res"].run(None, {**base, **scaled})

    cases = {
        "unet": lambda: sessions["unet"].run(None, base),
        "unet_res_zeros": lambda: sessions["unet_res"].run(None, {**base, **zeros}),
        "controlnet_alone": lambda: sessions["controlnet"].run(None, feeds),
        "separate": separate,
        "fused": lambda: sessions["fused"].run(None, fused_feeds),
    }
    return _rounds(cases, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--config", choices=("sd15", "mid"), default="sd15")
    parser.add_argument("--size", type=int, default=256, help="image size in pixels (latent: size / 8)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="intra-op threads of ORT and torch (default: theirs, one per core)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    latent = args.size // 8
    graphs, figures = export_graphs(args.out_dir, args.config, latent)
    gc.collect()
    figures["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    figures["ort"] = time_ort(graphs, latent, args.runs, args.threads)
    print(json.dumps(figures["ort"]), flush=True)
    gc.collect()
    figures["diffusers"] = time_diffusers(args.config, latent, args.runs, args.threads)
    figures["settings"] = {
        "config": args.config,
        "size": args.size,
        "batch": 2,
        "runs": args.runs,
        "threads": args.threads,
    }
    figures["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
