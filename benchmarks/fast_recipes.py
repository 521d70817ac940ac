"""Seconds per image of the fast recipes on the CPU: plain 25-step DPM++, LCM in 4 steps, LCM + the tiny VAE
and DeepCache every 3rd step, on sdrt's OpenVINO bf16 and ONNX Runtime fp32 bundles, beside diffusers bf16
doing the same work (DeepCache: its package's ``DeepCacheSDHelper`` on diffusers' pipeline) and, for the LCM
rows, optimum-intel's ``OVLatentConsistencyModelPipeline`` (what FastSD CPU runs). Every library in fresh
processes, one at a time, alternating per repetition. ``--libraries ... sdrt-ov-static optimum-intel-static``
adds OpenVINO compiled for the image's shapes on both sides (sdrt: ``SDRT_OPENVINO_STATIC_SHAPES=1``;
optimum-intel: ``pipe.reshape(...)`` then ``pipe.compile()``, as FastSD CPU does).

    python -m benchmarks.make_sd15_random .work/sd15-random
    python -m benchmarks.make_sd15_random .work/lcm15-random --lcm
    python -m benchmarks.make_sd15_random .work/taesd-random --tiny-vae
    R="--min-size 256 --max-size 512 --max-batch 1 --no-validate"
    build-engine .work/sd15-random -o .work/fr/plain-ov --backend openvino --precision bf16 $R
    build-engine .work/lcm15-random -o .work/fr/lcm-ov --backend openvino --precision bf16 $R
    build-engine .work/lcm15-random -o .work/fr/lcm-taesd-ov --vae .work/taesd-random \\
        --backend openvino --precision bf16 $R
    (the same three with --backend ort --precision fp32, into plain-ort, lcm-ort, lcm-taesd-ort;
    with DeepCache: build-engine .work/sd15-random -o .work/fr/deepcache-ov --deepcache ... and -ort)
    python -m benchmarks.fast_recipes .work --optimum-python /work/venv-optimum/bin/python \\
        --sizes 256 512 --repeats 2

``WORK`` holds the three model folders and ``WORK/fr`` the bundles; the script makes the LCM + TAESD
model folder optimum-intel and diffusers load (the LCM folder's parts, linked, with ``vae`` the
AutoencoderTiny) and exports optimum-intel's OpenVINO LCM model once (``export=True``, not timed; with
the tiny VAE, TAESD's decoder converted to an IR in its ``vae_decoder``, as FastSD CPU does). A
recipe whose bundle is missing (DeepCache before ``--deepcache`` exists) is skipped with a note.

optimum-intel pins an older transformers, so it runs from its own virtual environment
(``python -m venv VENV && VENV/bin/pip install torch==2.13.0 "optimum-intel[openvino,diffusers]"``,
then ``VENV/bin/pip uninstall torchvision``: the torchvision it brings is built for another torch and
breaks transformers' imports).
Each process: imports, loads, makes one warm-up image at the size (min(steps, 4) steps), then
``--images`` timed images; its peak RSS is reported. ``--tiny`` makes tiny models instead (for trying
the script: 64 px, 2 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.fast_recipes_children import DIFFUSERS, EXPORT, EXPORT_TAESD, OPTIMUM, SDRT


@dataclass(frozen=True)
class Recipe:
    """What every library runs for one row: a model folder (diffusers, optimum), sdrt's bundles by name."""

    name: str
    model: str  # folder under WORK
    bundle: str  # WORK/fr/{bundle}-ov and -ort
    pipeline: str  # diffusers' class
    steps: int
    guidance: float
    scheduler: str | None = None  # None: the folder's
    extra: dict = field(default_factory=dict)  # sdrt call arguments
    optimum: bool = False
    diffusers: bool = True
    deepcache: dict | None = None  # DeepCacheSDHelper.set_params on diffusers' pipeline


RECIPES = {
    "plain": Recipe(
        "plain 25-step DPM++",
        "sd15-random",
        "plain",
        "StableDiffusionPipeline",
        25,
        7.5,
        "DPMSolverMultistepScheduler",
    ),
    "lcm": Recipe(
        "LCM 4 steps", "lcm15-random", "lcm", "LatentConsistencyModelPipeline", 4, 8.0, optimum=True
    ),
    "lcm-taesd": Recipe(
        "LCM 4 steps + tiny VAE",
        "lcm15-taesd",
        "lcm-taesd",
        "LatentConsistencyModelPipeline",
        4,
        8.0,
        optimum=True,
    ),
    "deepcache": Recipe(
        "DeepCache interval 3, 25-step DPM++",
        "sd15-random",
        "deepcache",
        "StableDiffusionPipeline",
        25,
        7.5,
        "DPMSolverMultistepScheduler",
        extra={"cache_interval": 3},
        deepcache={"cache_interval": 3, "cache_branch_id": 0},  # diffusers: DeepCache's own helper
    ),
}
LIBRARIES = ("sdrt-ov", "diffusers", "sdrt-ort", "optimum-intel", "sdrt-ov-static", "optimum-intel-static")
# "-static": OpenVINO compiled for the image's shapes (FastSD CPU's reshape); not run unless asked
DEFAULT_LIBRARIES = LIBRARIES[:4]
SIZES_ARGS = {
    False: ["--min-size", "256", "--max-size", "512"],
    True: ["--min-size", "32", "--max-size", "64"],
}
BACKENDS = {
    "ov": ["--backend", "openvino", "--precision", "bf16"],
    "ort": ["--backend", "ort", "--precision", "fp32"],
}


def _make_models(work: Path, tiny: bool) -> None:
    """The three model folders (SD1.5-sized, or the tests' tiny ones with ``tiny``)."""
    if tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.export.test_tiny_vae import save_tiny_vae
        from tests.models import make_sd1
        from tests.runtime.pipelines.test_lcm import make_lcm

        makers = {"sd15-random": make_sd1, "lcm15-random": make_lcm, "taesd-random": save_tiny_vae}
    else:
        from benchmarks.make_sd15_random import make_sd15_random, make_tiny_vae_random

        makers = {
            "sd15-random": make_sd15_random,
            "lcm15-random": lambda f: make_sd15_random(f, lcm=True),
            "taesd-random": make_tiny_vae_random,
        }
    for name, make in makers.items():
        if not (work / name).exists():
            make(work / name)


def _make_lcm_taesd(work: Path) -> Path:
    """The LCM folder with the tiny VAE as its ``vae`` (links to the parts), as optimum and diffusers load it."""
    folder, lcm = work / "lcm15-taesd", (work / "lcm15-random").resolve()
    if folder.exists():
        return folder
    folder.mkdir()
    for part in lcm.iterdir():
        if part.name not in ("vae", "model_index.json"):
            (folder / part.name).symlink_to(part)
    (folder / "vae").symlink_to((work / "taesd-random").resolve())
    index = json.loads((lcm / "model_index.json").read_text())
    index["vae"] = ["diffusers", "AutoencoderTiny"]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def _build(work: Path, recipe: Recipe, kind: str, tiny: bool) -> None:
    out = work / "fr" / f"{recipe.bundle}-{kind}"
    if (out / "manifest.json").is_file():
        return
    vae = ["--vae", str(work / "taesd-random")] if recipe.bundle == "lcm-taesd" else []
    if recipe.bundle == "deepcache":
        helped = subprocess.run(["build-engine", "--help"], capture_output=True, text=True).stdout
        if "--deepcache" not in helped:
            print(f"build-engine has no --deepcache: {out.name} not built, its row skipped")
            return
        vae = ["--deepcache"]
    model = work / ("lcm15-random" if recipe.bundle.startswith("lcm") else recipe.model)
    command = ["build-engine", str(model), "-o", str(out), *vae, *BACKENDS[kind], *SIZES_ARGS[tiny]]
    subprocess.run([*command, "--max-batch", "1", "--no-validate", "-q"], check=True)


def prepare(work: Path, recipes: list[str], optimum_python: str | None, tiny: bool, build: bool) -> None:
    """Make what is missing: model folders, bundles (unless not ``build``), optimum-intel's exported models."""
    _make_models(work, tiny)
    _make_lcm_taesd(work)
    for name in recipes:
        for kind in BACKENDS if build else ():
            _build(work, RECIPES[name], kind, tiny)
        if RECIPES[name].optimum and optimum_python:
            _export_optimum(work, optimum_python)


def _export_optimum(work: Path, python: str) -> None:
    lcm, taesd = work / "fr" / "optimum-lcm", work / "fr" / "optimum-lcm-taesd"
    if not (lcm / "model_index.json").is_file():
        subprocess.run([python, "-c", EXPORT, str(work / "lcm15-random"), str(lcm)], check=True)
    if not taesd.exists():
        subprocess.run(
            [python, "-c", EXPORT_TAESD, str(lcm), str(work / "taesd-random"), str(taesd)], check=True
        )


def _settings(work: Path, recipe: Recipe, library: str, size: int, args: argparse.Namespace) -> dict | None:
    """The child's arguments, or None when ``library`` does not run ``recipe`` (or its files are missing)."""
    common = {
        "size": size,
        "steps": args.steps or recipe.steps,
        "guidance": recipe.guidance,
        "images": args.images,
        "prompt": args.prompt,
        "scheduler": recipe.scheduler,
    }
    if library.startswith("sdrt"):
        model = work / "fr" / f"{recipe.bundle}-{library.split('-')[1]}"
        provider = "cpu" if library == "sdrt-ort" else "openvino"
        env = {"SDRT_OPENVINO_STATIC_SHAPES": "1"} if library.endswith("-static") else {}
        return (
            {**common, "model": str(model), "provider": provider, "extra": recipe.extra, "env": env}
            if model.exists()
            else None
        )
    if library == "diffusers":
        return (
            {
                **common,
                "model": str(work / recipe.model),
                "pipeline": recipe.pipeline,
                "deepcache": recipe.deepcache,
            }
            if recipe.diffusers
            else None
        )
    model = work / "fr" / f"optimum-{recipe.bundle}"
    return (
        {**common, "model": str(model), "static": library.endswith("-static")}
        if recipe.optimum and args.optimum_python and model.exists()
        else None
    )


def _child(library: str, settings: dict, optimum_python: str | None) -> dict:
    optimum = library.startswith("optimum-intel")
    python = optimum_python if optimum else sys.executable
    code = OPTIMUM if optimum else DIFFUSERS if library == "diffusers" else SDRT
    env = {**os.environ, **settings.pop("env", {})}
    done = subprocess.run([python, "-c", code, json.dumps(settings)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{library}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(work: Path, args: argparse.Namespace) -> list[dict]:
    """Every (size, repetition, recipe, library) in a fresh process, one at a time; the library order is
    reversed every other repetition. Results are saved after each process (``--json``)."""
    results: list[dict] = []
    path = args.json or work / "fr" / "fast_recipes.json"
    for size in args.sizes:
        repeats = args.repeats if size < 512 else args.repeats_512 or args.repeats
        for rep in range(repeats):
            order = args.libraries if rep % 2 == 0 else args.libraries[::-1]
            for name in args.recipes:
                for library in order:
                    settings = _settings(work, RECIPES[name], library, size, args)
                    if settings is None:
                        continue
                    load, began = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
                    try:
                        figures = _child(library, settings, args.optimum_python)
                    except SystemExit as failed:  # one cell's failure leaves the others' figures
                        print(f"{began} {size} #{rep} {name} {library} failed: {failed}")
                        continue
                    row = {"size": size, "repeat": rep, "recipe": name, "library": library, "utc": began}
                    results.append({**row, **figures, "load_before": load, "load_after": os.getloadavg()[0]})
                    print(
                        f"{began} {size} #{rep} {name:<10} {library:<14} {figures['image_s']} load {load:.1f}"
                    )
                    path.write_text(
                        json.dumps({"settings": vars(args), "results": results}, indent=2, default=str)
                    )
    return results


def _median(rows: list[dict]) -> float | None:
    times = [t for r in rows for t in r["image_s"]]
    return statistics.median(times) if times else None


def table(results: list[dict]) -> str:
    """Markdown: per size and recipe, each library's median seconds per image (every timed image of every
    process), and the others' time over sdrt OpenVINO's (above 1: sdrt OpenVINO is faster)."""
    ratios = [(lib, "sdrt-ov") for lib in ("diffusers", "optimum-intel", "sdrt-ort")]
    ratios.append(("optimum-intel-static", "sdrt-ov-static"))
    header = "| size | recipe | " + " | ".join(f"{lib} (s)" for lib in LIBRARIES)
    header += " | " + " | ".join(f"{a} / {b}" for a, b in ratios) + " |"
    lines = [header, "|" + "---|" * (2 + len(LIBRARIES) + len(ratios))]
    for size in sorted({r["size"] for r in results}):
        for name in RECIPES:
            rows = [r for r in results if r["size"] == size and r["recipe"] == name]
            if not rows:
                continue
            med = {lib: _median([r for r in rows if r["library"] == lib]) for lib in LIBRARIES}
            cells = ["-" if med[lib] is None else f"{med[lib]:.2f}" for lib in LIBRARIES]
            for lib, base in ratios:
                known = med[lib] is not None and med[base] is not None
                cells.append(f"{med[lib] / med[base]:.2f}x" if known else "-")
            lines.append(f"| {size}x{size} | {RECIPES[name].name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path, help="the folder of the model folders (bundles in WORK/fr)")
    p.add_argument("--optimum-python", help="python of a venv with optimum-intel (else no optimum rows)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    p.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(DEFAULT_LIBRARIES))
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per library and recipe")
    p.add_argument(
        "--repeats-512", type=int, default=None, help="repeats at 512 px and above (default: --repeats)"
    )
    p.add_argument("--images", type=int, default=1, help="timed images per process, after a warm-up image")
    p.add_argument("--steps", type=int, default=None, help="override every recipe's steps (for trying)")
    p.add_argument("--prompt", default="a photo of a cat")
    p.add_argument("--tiny", action="store_true", help="tiny models (try the script; use --sizes 64)")
    p.add_argument("--json", type=Path, help="results file (default: WORK/fr/fast_recipes.json)")
    p.add_argument("--no-build", action="store_true", help="build no bundle (rows of missing ones skipped)")
    p.add_argument("--prepare-only", action="store_true", help="make the models and bundles, time nothing")
    p.add_argument(
        "--summarize", type=Path, nargs="+", metavar="JSON", help="print the table of earlier runs"
    )
    args = p.parse_args()
    if args.summarize:
        print(table([r for path in args.summarize for r in json.loads(path.read_text())["results"]]))
        return
    (args.work / "fr").mkdir(parents=True, exist_ok=True)
    prepare(args.work, args.recipes, args.optimum_python, args.tiny, not args.no_build)
    if not args.prepare_only:
        print(table(measure(args.work, args)))


if __name__ == "__main__":
    main()
