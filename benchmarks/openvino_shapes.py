"""OpenVINO on a bundle's UNet IR: dynamic shapes against a static reshape per (batch, height, width), and
what the model cache saves: compile time, first call, warm call, each setting in a fresh process.

    python -m benchmarks.openvino_shapes BUNDLE [--size 256] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import openvino as ov

    xml, size, precision, static, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5]
    core = ov.Core()
    if cache:
        core.set_property({"CACHE_DIR": cache})
    start = time.perf_counter()
    model = core.read_model(xml)
    latent = size // 8
    shapes = {"sample": [2, 4, latent, latent], "timestep": [2], "encoder_hidden_states": [2, 77, -1]}
    shapes = {p.get_any_name(): s for p in model.inputs for n, s in shapes.items() if n in p.get_names()}
    if static:
        hidden = [p for p in model.inputs if "encoder_hidden_states" in p.get_names()][0]
        shapes[hidden.get_any_name()][2] = hidden.get_partial_shape()[2].get_length()
        model.reshape({k: ov.PartialShape(v) for k, v in shapes.items()})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": {"bf16": "bf16", "fp32": "f32"}[precision]})
    load = time.perf_counter() - start
    rng = np.random.default_rng(0)
    feeds = []
    for p in compiled.inputs:
        shape = [d if d > 0 else 768 for d in shapes.get(p.get_any_name(), [])] or [2]
        if "encoder_hidden_states" in p.get_names() and not static:
            shape[2] = model.input(p.get_any_name()).get_partial_shape()[2].get_length()
        feeds.append(rng.standard_normal(shape).astype(np.float32))
    request = compiled.create_infer_request()
    calls = []
    for _ in range(4):
        start = time.perf_counter()
        request.infer(feeds)
        calls.append(time.perf_counter() - start)
    print(json.dumps({"load_s": load, "first_s": calls[0], "warm_s": sorted(calls[1:])[1]}))
    """
)


def _run(xml: str, size: int, precision: str, static: bool, cache: str) -> dict:
    argv = [sys.executable, "-c", CHILD, xml, str(size), precision, "1" if static else "0", cache]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    args = parser.parse_args()
    xml = f"{args.bundle}/openvino/unet.xml"
    print(
        f"UNet of {args.bundle}, batch 2, {args.size}x{args.size}, {args.precision}; seconds (warm: median of 3)"
    )
    print(f"{'shapes':<8} {'cache':<12} {'load':>7} {'1st call':>9} {'warm call':>10}")
    for static in (False, True):
        with tempfile.TemporaryDirectory() as cache:
            for label, folder in (("none", ""), ("cold", cache), ("warm", cache)):
                r = _run(xml, args.size, args.precision, static, folder)
                print(
                    f"{'static' if static else 'dynamic':<8} {label:<12} {r['load_s']:>7.2f} {r['first_s']:>9.2f} "
                    f"{r['warm_s']:>10.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
