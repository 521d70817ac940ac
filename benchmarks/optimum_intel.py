"""sdrt's OpenVINO bundle beside optimum-intel's ``OVStableDiffusionPipeline`` on the same model folder:
import, load, first image and per-image time, each library in fresh processes, alternating.

    python -m benchmarks.optimum_intel MODEL_DIR BUNDLE --optimum-python VENV/bin/python [--precision bf16]

optimum-intel pins transformers < 5.6, so it runs from its own virtual environment (``--optimum-python``;
``pip install torch==2.13.0 "optimum-intel[openvino,diffusers]"`` there). Its OpenVINO model is exported
once into ``--work`` (``OVStableDiffusionPipeline.from_pretrained(MODEL_DIR, export=True)``, not timed);
the bundle is sdrt's ``build-engine MODEL_DIR -o BUNDLE --backend openvino``. Both run the model folder's
scheduler, at the same size, steps, guidance and precision hint. Both libraries cache compiled models
(sdrt: ``$SDRT_CACHE_DIR``; optimum-intel: its default, none on the CPU), so the first repeat's load is
reported apart from the later ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

TIMED = textwrap.dedent(
    """
    import json, sys, time
    start = time.perf_counter()
    {imports}
    imported = time.perf_counter() - start
    args = json.loads(sys.argv[1])
    hint = {{"bf16": "bf16", "fp32": "f32"}}[args["precision"]]
    start = time.perf_counter()
    {load}
    loaded = time.perf_counter() - start
    call = dict(height=args["size"], width=args["size"], num_inference_steps=args["steps"], guidance_scale=7.5)
    times = []
    for i in range(args["runs"] + 1):
        start = time.perf_counter()
        {generate}
        times.append(time.perf_counter() - start)
    print(json.dumps({{"import_s": imported, "load_s": loaded, "first_s": times[0], "image_s": times[1:]}}))
    """
)

OPTIMUM = TIMED.format(
    imports="from optimum.intel import OVStableDiffusionPipeline",
    load='pipe = OVStableDiffusionPipeline.from_pretrained(args["model"], ov_config={"INFERENCE_PRECISION_HINT": hint})\n'
    "pipe.set_progress_bar_config(disable=True)",
    generate='import torch; pipe(args["prompt"], generator=torch.Generator().manual_seed(i), **call)',
)
SDRT = TIMED.format(
    imports="from sdrt.runtime import DiffusionPipeline",
    load='pipe = DiffusionPipeline.from_pretrained(args["model"], provider="openvino")\n'
    "pipe.set_progress_bar_config(disable=True)",
    generate='pipe(args["prompt"], generator=i, **call)',
)
EXPORT = textwrap.dedent(
    """
    import sys
    from optimum.intel import OVStableDiffusionPipeline
    OVStableDiffusionPipeline.from_pretrained(sys.argv[1], export=True, compile=False).save_pretrained(sys.argv[2])
    """
)


def _child(python: str, code: str, settings: dict) -> dict:
    done = subprocess.run([python, "-c", code, json.dumps(settings)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("bundle", type=Path)
    p.add_argument("--optimum-python", required=True, help="python of a venv with optimum-intel")
    p.add_argument("--work", type=Path, default=Path(".work/optimum-intel"))
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--runs", type=int, default=2, help="timed images per process after the first")
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per library, alternating")
    p.add_argument("--prompt", default="a photo of a cat")
    args = p.parse_args()
    ov_model = args.work / "ov-model"
    if not (ov_model / "model_index.json").is_file():
        subprocess.run([args.optimum_python, "-c", EXPORT, str(args.model_dir), str(ov_model)], check=True)
    common = dict(
        size=args.size, steps=args.steps, runs=args.runs, precision=args.precision, prompt=args.prompt
    )
    results: dict[str, list[dict]] = {"optimum-intel": [], "sdrt": []}
    for _ in range(args.repeats):
        results["optimum-intel"].append(
            _child(args.optimum_python, OPTIMUM, {**common, "model": str(ov_model)})
        )
        results["sdrt"].append(_child(sys.executable, SDRT, {**common, "model": str(args.bundle)}))
    print(
        f"{args.size}x{args.size}, {args.steps} steps, {args.precision}, {args.repeats} processes each x "
        f"{args.runs} timed images; seconds (median; first process's load apart)"
    )
    print(
        f"{'library':<14} {'import':>7} {'load 1st':>9} {'load':>6} {'1st image':>10} {'image':>7} {'per step':>9}"
    )
    for name, runs in results.items():
        later = runs[1:] or runs
        image = statistics.median(t for r in runs for t in r["image_s"])
        print(
            f"{name:<14} {statistics.median(r['import_s'] for r in runs):>7.2f} {runs[0]['load_s']:>9.2f} "
            f"{statistics.median(r['load_s'] for r in later):>6.2f} "
            f"{statistics.median(r['first_s'] for r in runs):>10.2f} {image:>7.2f} {image / args.steps:>9.3f}"
        )
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "results.json").write_text(json.dumps({"settings": common, "results": results}, indent=2))


if __name__ == "__main__":
    main()
