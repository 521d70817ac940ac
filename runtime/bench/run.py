"""``sdrt bench``: latency of a bundle's pipeline per stage, optionally beside diffusers on the same weights.

Order of work: check the bundle (and the comparison model, before anything is loaded); load sdrt's
pipeline and make the first image (the cold figure); warm-up runs; peak memory of sdrt alone; then,
with a comparison model, the same for diffusers; then the timed runs, alternating sdrt and diffusers
so that both see the same machine load. Every run is timed per stage (see ``bench_stages``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle, open_bundle

from .stages import (
    CupyEventClock,
    HostClock,
    StageRecorder,
    aggregate,
    instrument_pipeline,
    run_figures,
)

logger = logging.getLogger(__name__)

#: model types the bench runs (text-to-image and unconditional pipelines)
BENCH_MODEL_TYPES = ("sd1", "sd2", "sdxl", "uncond")
#: stages compared with diffusers (median over median: diffusers time / sdrt time)
RATIO_STAGES = (
    "text_encoder",
    "unet_per_step",
    "unet_total",
    "loop_overhead_per_step",
    "vae_decode",
    "pipeline",
)


@dataclass(frozen=True)
class BenchSettings:
    """What both libraries run: ``height``/``width`` are None for unconditional models (fixed size)."""

    steps: int
    runs: int
    warmup: int
    height: int | None
    width: int | None
    batch: int
    scheduler: str | None
    provider: str
    prompt: str
    guidance_scale: float
    seed: int


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class DeviceMemory:
    """Device memory in use (whole GPU, cudaMemGetInfo), sampled at stage ends; peak minus the level at start."""

    def __init__(self) -> None:
        import cupy

        self._runtime = cupy.cuda.runtime
        self.baseline = self._used()
        self.peak = self.baseline

    def _used(self) -> int:
        free, total = self._runtime.memGetInfo()
        return int(total - free)

    def sample(self) -> None:
        self.peak = max(self.peak, self._used())

    def figures(self) -> dict[str, float]:
        return {
            "peak_device_mib": (self.peak - self.baseline) / 2**20,
            "device_used_before_mib": self.baseline / 2**20,
        }


def _import_engine_libraries(provider: str) -> None:
    """Import the installed engine libraries the provider may use, before the clock starts."""
    names = {"cpu": ("onnxruntime",), "cuda": ("onnxruntime", "cupy"), "tensorrt": ("tensorrt", "cupy")}
    for name in names.get(provider, ("onnxruntime", "cupy", "tensorrt")):
        if importlib.util.find_spec(name) is not None:
            try:
                importlib.import_module(name)
            except Exception:  # a broken install fails later, where the provider is chosen, with its message
                logger.debug("could not import %s", name, exc_info=True)


def _device_memory() -> DeviceMemory | None:
    """A probe started before loading, when CuPy sees a GPU (the provider may still turn out to be the CPU)."""
    try:
        return DeviceMemory()
    except Exception:  # no CuPy, or no usable GPU
        return None


class SdrtRunner:
    """sdrt's pipeline on a bundle, with its stages timed; ``run()`` makes one generation."""

    library = "sdrt"

    def __init__(self, bundle: Path, settings: BenchSettings) -> None:
        from sdrt.runtime.pipelines.base import DiffusionPipeline

        self.settings = settings
        _import_engine_libraries(settings.provider)  # the cold figure counts loading, not imports
        start = time.perf_counter()
        self.memory = None if settings.provider == "cpu" else _device_memory()
        pipe = DiffusionPipeline.from_pretrained(bundle, provider=settings.provider)
        if settings.scheduler:
            from sdrt.schedulers import get_scheduler_class

            pipe.scheduler = get_scheduler_class(settings.scheduler).from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.load_s = time.perf_counter() - start
        self.pipe = pipe
        if pipe.xp is np:
            clock: Any = HostClock()
            self.memory = None
        else:
            clock = CupyEventClock()
            self.memory = self.memory or DeviceMemory()
        self.recorder = StageRecorder(clock, probe=self.memory.sample if self.memory else None)
        self.undo = instrument_pipeline(pipe, self.recorder)

    def describe(self) -> dict[str, Any]:
        precisions = sorted({str(c.get("precision")) for c in self.pipe.bundle.components.values()})
        return {
            "provider": self.pipe.provider,
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "precision": "/".join(precisions),
        }

    def run(self) -> dict[str, Any]:
        s = self.settings
        start = time.perf_counter()
        if s.height is None:
            self.pipe(batch_size=s.batch, generator=s.seed, num_inference_steps=s.steps, output_type="np")
        else:
            self.pipe(
                [s.prompt] * s.batch,
                height=s.height,
                width=s.width,
                num_inference_steps=s.steps,
                guidance_scale=s.guidance_scale,
                generator=s.seed,
                output_type="np",
            )
        if self.pipe.xp is not np:
            self.pipe.xp.cuda.get_current_stream().synchronize()
        pipeline_s = time.perf_counter() - start
        return run_figures(self.recorder.take(), pipeline_s)

    def memory_figures(self) -> dict[str, float]:
        return self.memory.figures() if self.memory else {}

    def close(self) -> None:
        self.undo()


def check_bench_bundle(bundle: Bundle) -> None:
    if bundle.model_type not in BENCH_MODEL_TYPES:
        raise ValueError(
            f"{bundle.path} holds a {bundle.model_type!r} model; sdrt bench times text-to-image and "
            f"unconditional bundles ({', '.join(BENCH_MODEL_TYPES)})"
        )


def bench_size(bundle: Bundle, size: tuple[int, int] | None) -> tuple[int | None, int | None]:
    """(height, width) of the generations: ``size``, else the model's default; None for unconditional models."""
    if bundle.model_type == "uncond":
        if size is not None:
            raise ValueError("--size does not apply to unconditional models (their size is fixed)")
        return None, None
    if size is not None:
        return size
    from sdrt.runtime.bundle.manifest import load_manifest

    return load_manifest(bundle.path).default_size


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
    prompt: str = "a photo of an astronaut riding a horse",
    guidance_scale: float = 7.5,
    seed: int = 0,
    compare_diffusers: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Benchmark ``bundle`` (and diffusers on ``compare_diffusers``, the folder it was built from).

    ``size`` is (height, width); ``scheduler`` a diffusers scheduler class name (default: the bundle's).
    Returns every figure (seconds, MiB), the settings, the machine and the versions; see BENCHMARKS.md.
    """
    from .report import machine_info, versions

    if steps < 1 or runs < 1 or warmup < 0 or batch < 1:
        raise ValueError(
            f"need --steps >= 1, --runs >= 1, --warmup >= 0, --batch >= 1 (got {steps}, {runs}, {warmup}, {batch})"
        )
    info = open_bundle(bundle)
    check_bench_bundle(info)
    if compare_diffusers is not None:
        from sdrt.export.diffusers_reference import check_comparison_model

        check_comparison_model(info, Path(compare_diffusers))
    height, width = bench_size(info, size)
    settings = BenchSettings(
        steps, runs, warmup, height, width, batch, scheduler, provider, prompt, guidance_scale, seed
    )
    sdrt, sdrt_cold = _cold_start(lambda: SdrtRunner(info.path, settings), warmup)
    memory = {"peak_rss_mib": peak_rss_mib(), **sdrt.memory_figures()}
    runners = [(sdrt, sdrt_cold, memory, [])]
    if compare_diffusers is not None:
        from sdrt.export.diffusers_reference import DiffusersRunner

        described = sdrt.describe()
        make = functools.partial(
            DiffusersRunner,
            Path(compare_diffusers),
            settings,
            scheduler=described["scheduler"],
            on_gpu=described["provider"] != "cpu",
            fp16="fp16" in described["precision"],
        )
        reference, ref_cold = _cold_start(make, warmup)
        runners.append(
            (reference, ref_cold, {"peak_rss_mib": peak_rss_mib(), **reference.memory_figures()}, [])
        )
    for i in range(runs):
        for runner, _, _, timed in runners:
            timed.append(runner.run())
        logger.info("timed run %d/%d done", i + 1, runs)
    result: dict[str, Any] = {
        "settings": {
            "bundle": str(info.path),
            "model_type": info.model_type,
            **asdict(settings),
            "compare_diffusers": None if compare_diffusers is None else str(compare_diffusers),
        },
        "machine": machine_info(gpu=sdrt.pipe.xp is not np),
        "versions": versions(torch=compare_diffusers is not None),
    }
    for runner, cold, memory, timed in runners:
        result[runner.library] = {
            **runner.describe(),
            "cold": cold,
            **aggregate(timed, batch),
            "memory": memory,
            "runs": timed,
        }
        runner.close()
    result["memory_peak_rss_mib_process"] = peak_rss_mib()
    if compare_diffusers is not None:
        result["ratios"] = ratios(result["sdrt"], result["diffusers"])
    return result
