"""``sdrt bench``: latency of a bundle's pipeline per stage, optionally beside diffusers on the same weights.

Order of work: check the bundle (and the comparison model, before anything is loaded); load sdrt's
pipeline and make the first image (the cold figure); warm-up runs; peak memory of sdrt alone; then,
with a comparison model, the same for diffusers, which runs in a process of its own (the reference's
runner is a ``process.ProcessRunner``: never in the process that has run sdrt's engines); then the
timed runs, alternating sdrt and diffusers so that both see the same machine load (each waits while the
other works). Every run is timed per stage (see ``stages``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle, open_bundle
from sdrt.runtime.errors import InputError
from sdrt.runtime.families import TEXT_TO_IMAGE, UNCONDITIONAL, all_families, family, find_family

from .runner import BenchSettings, Reference, SdrtRunner, peak_rss_mib
from .stages import aggregate

logger = logging.getLogger(__name__)

#: the tasks the bench times: a bundle whose family loads one of these by default is benched
BENCH_TASKS = (TEXT_TO_IMAGE, UNCONDITIONAL)
#: stages compared with diffusers (median over median: diffusers time / sdrt time)
RATIO_STAGES = (
    "text_encoder",
    "unet_per_step",
    "unet_total",
    "loop_overhead_per_step",
    "vae_decode",
    "pipeline",
)


DEFAULT_PROMPT = "a photo of an astronaut riding a horse"


def bench_prompt(bundle: Bundle) -> str:
    """``DEFAULT_PROMPT`` when every word of it is a word of the bundle's vocabulary, else the longest
    words of that vocabulary (a model trained on its own small vocabulary, such as models/sd-shapes)."""
    folder = bundle.path / "tokenizer"
    if not folder.is_dir():
        return DEFAULT_PROMPT
    from sdrt.runtime.text.files import read_tokenizer_folder

    vocab = read_tokenizer_folder(folder).vocab
    if all(f"{word}</w>" in vocab for word in DEFAULT_PROMPT.split()):
        return DEFAULT_PROMPT
    words = [w[:-4] for w in vocab if w.endswith("</w>") and w[:-4].isalpha()]
    return " ".join(sorted(words, key=len, reverse=True)[:6]) or DEFAULT_PROMPT


def check_bench_bundle(bundle: Bundle) -> None:
    found = find_family(bundle.model_type)
    if found is None or found.default_task not in BENCH_TASKS:
        benched = [f.name for f in all_families() if f.default_task in BENCH_TASKS]
        raise InputError(
            f"{bundle.path} holds a {bundle.model_type!r} model; sdrt bench times text-to-image and "
            f"unconditional bundles ({', '.join(benched)})"
        )


def bench_size(bundle: Bundle, size: tuple[int, int] | None) -> tuple[int | None, int | None]:
    """(height, width) of the generations: ``size``, else the model's default; None for unconditional models."""
    if family(bundle.model_type).fixed_size:
        if size is not None:
            raise InputError("--size does not apply to unconditional models (their size is fixed)")
        return None, None
    if size is not None:
        return size
    return bundle.manifest.default_size


def _cold_start(make: Callable[[], Any], warmup: int) -> tuple[Any, dict[str, Any]]:
    """Load (``make``) and make the first image: the cold figure (library imports not counted); then
    ``warmup`` untimed runs."""
    runner = make()
    first = runner.run()
    cold = {
        "load_s": runner.load_s,
        "first_image_s": first["pipeline_s"],
        "cold_s": runner.load_s + first["pipeline_s"],
    }
    logger.info("%s: cold start %.3f s (load %.3f s)", runner.library, cold["cold_s"], cold["load_s"])
    for i in range(warmup):
        runner.run()
        logger.info("%s: warm-up run %d/%d done", runner.library, i + 1, warmup)
    return runner, {**cold, "first_run": first}


def ratios(sdrt: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """diffusers' median / sdrt's median per stage (above 1: sdrt is faster), and for the cold start."""
    out = {}
    for name in RATIO_STAGES:
        a, b = sdrt["stages"].get(name), reference["stages"].get(name)
        if a and b and a["median_s"] > 0:
            out[name] = b["median_s"] / a["median_s"]
    out["cold"] = reference["cold"]["cold_s"] / sdrt["cold"]["cold_s"]
    out["images_per_s"] = sdrt["images_per_s"] / reference["images_per_s"]
    return out


def run_bench(
    bundle: str | os.PathLike[str],
    *,
    steps: int = 30,
    runs: int = 3,
    warmup: int = 1,
    size: tuple[int, int] | None = None,
    batch: int = 1,
    scheduler: str | None = None,
    provider: str = "auto",
    prompt: str | None = None,
    guidance_scale: float = 7.5,
    seed: int = 0,
    reference: Reference | None = None,
) -> dict[str, Any]:
    """Benchmark ``bundle``, and beside it ``reference`` (another library on the same weights, e.g.
    the export stage's diffusers reference for ``sdrt bench --compare-diffusers``).

    ``size`` is (height, width); ``scheduler`` a diffusers scheduler class name (default: the bundle's).
    Returns every figure (seconds, MiB), the settings, the machine and the versions; see BENCHMARKS.md.
    """
    if steps < 1 or runs < 1 or warmup < 0 or batch < 1:
        raise InputError(
            f"need --steps >= 1, --runs >= 1, --warmup >= 0, --batch >= 1 (got {steps}, {runs}, {warmup}, {batch})"
        )
    info = open_bundle(bundle)
    check_bench_bundle(info)
    if reference is not None:
        reference.check(info)
    height, width = bench_size(info, size)
    prompt = prompt or bench_prompt(info)
    settings = BenchSettings(
        steps, runs, warmup, height, width, batch, scheduler, provider, prompt, guidance_scale, seed
    )  # fmt: skip
    sdrt, sdrt_cold = _cold_start(lambda: SdrtRunner(info.path, settings), warmup)
    runners: list[tuple[Any, Any, dict[str, Any], list[Any]]] = [
        (sdrt, sdrt_cold, {"peak_rss_mib": peak_rss_mib(), **sdrt.memory_figures()}, [])
    ]
    if reference is not None:
        other, other_cold = _cold_start(
            functools.partial(reference.runner, settings, sdrt.describe()), warmup
        )
        runners.append((other, other_cold, {"peak_rss_mib": peak_rss_mib(), **other.memory_figures()}, []))
    for i in range(runs):
        for runner, _, _, timed in runners:
            timed.append(runner.run())
        logger.info("timed run %d/%d done", i + 1, runs)
    return _result(info, settings, runners, reference)


def _result(
    info: Bundle, settings: BenchSettings, runners: list[tuple], reference: Reference | None
) -> dict[str, Any]:
    """Every figure of every runner, the settings, the machine and the versions (and the ratios)."""
    from .report import machine_info, versions

    sdrt = runners[0][0]
    result: dict[str, Any] = {
        "settings": {
            "bundle": str(info.path),
            "model_type": info.model_type,
            **asdict(settings),
            "compare_diffusers": None if reference is None else reference.source,
        },
        "machine": machine_info(gpu=sdrt.pipe.xp is not np),
        "versions": versions(torch=reference is not None),
    }
    for runner, cold, memory, timed in runners:
        result[runner.library] = {
            **runner.describe(),
            "cold": cold,
            **aggregate(timed, settings.batch),
            "memory": memory,
            "runs": timed,
        }
        runner.close()
    result["memory_peak_rss_mib_process"] = peak_rss_mib()
    if reference is not None:
        result["ratios"] = ratios(result["sdrt"], result[runners[1][0].library])
    return result
