"""What opening a bundle's ONNX Runtime CPU graph costs, per session setting: load time, first call, warm call.

    python -m benchmarks.ort_session_load BUNDLE [--component unet] [--size 256]

Each setting opens the component's ``ort/`` graph (already optimized at the *extended* level by
build-engine) in a fresh process, so neither the file cache of a previous setting's prepacked weights nor
ONNX Runtime's allocator state carries over (the file cache of the graph itself does: it is read once
before the first setting).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

SETTINGS = {
    "all (ORT's default)": {"level": "ORT_ENABLE_ALL"},
    "extended": {"level": "ORT_ENABLE_EXTENDED"},
    "basic": {"level": "ORT_ENABLE_BASIC"},
    "none": {"level": "ORT_DISABLE_ALL"},
    "all, no prepacking": {"level": "ORT_ENABLE_ALL", "config": {"session.disable_prepacking": "1"}},
}

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import onnxruntime as ort
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.engines.ort.engine import OrtEngine

    bundle_dir, name, size, setting = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    bundle = open_bundle(bundle_dir)
    record = bundle.record(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, setting["level"])
    for key, value in setting.get("config", {}).items():
        options.add_session_config_entry(key, value)
    start = time.perf_counter()
    engine = OrtEngine(bundle.path / record.graph_file("cpu"), provider="cpu", session_options=options, name=name)
    load = time.perf_counter() - start
    rng = np.random.default_rng(0)
    dims = {"batch": 2 if name == "unet" else 1, "height": size, "width": size,
            "latent_height": size // 8, "latent_width": size // 8, "sequence": 77}
    feeds = {}
    for key, spec in engine.inputs.items():
        shape = [d if isinstance(d, int) else dims.get(d, 1) for d in record.inputs[key].shape]
        feeds[key] = (rng.integers(0, 1000, shape) if spec.dtype.kind in "iu" else rng.standard_normal(shape)).astype(spec.dtype)
    calls = []
    for _ in range(3):
        start = time.perf_counter()
        engine.run(feeds)
        calls.append(time.perf_counter() - start)
    print(json.dumps({"load_s": load, "first_s": calls[0], "warm_s": sorted(calls[1:])[0]}))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--component", default="unet")
    parser.add_argument("--size", type=int, default=256, help="image size in pixels (default 256)")
    args = parser.parse_args()
    subprocess.run(
        ["cat"], stdin=open(f"{args.bundle}/ort/{args.component}.onnx", "rb"), stdout=subprocess.DEVNULL
    )
    print(f"{args.component} of {args.bundle}, {args.size}x{args.size}; seconds")
    print(f"{'setting':<22} {'load':>7} {'1st call':>9} {'warm call':>10} {'load+1st':>9}")
    for label, setting in SETTINGS.items():
        done = subprocess.run(
            [sys.executable, "-c", CHILD, args.bundle, args.component, str(args.size), json.dumps(setting)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{label:<22} {r['load_s']:>7.2f} {r['first_s']:>9.2f} {r['warm_s']:>10.2f} "
            f"{r['load_s'] + r['first_s']:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
