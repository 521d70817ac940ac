"""Build one TensorRT plan: one component, one optimization profile, written to
``plans/<component>.<profile>.plan``. Runs in the calling process or in a child process (which gives
all of the builder's memory back to the system when it exits)."""

from __future__ import annotations

import gc
import logging
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sdrt.export.errors import ExportError
from sdrt.runtime.engines.tensorrt.logger import make_logger
from sdrt.runtime.engines.tensorrt.module import import_trt

from .cache import load_timing_cache, save_timing_cache, write_atomic
from .network import (
    BuildSettings,
    check_network_inputs,
    compute_capabilities,
    configure,
    parse_onnx,
)
from .progress import make_progress_monitor

log = logging.getLogger(__name__)


class TrtBuildError(ExportError, RuntimeError):
    """The TensorRT builder returned no plan; the message carries its errors."""


@dataclass(frozen=True)
class PlanJob:
    """Everything one plan build needs, as plain data (it crosses into a child process)."""

    component: str
    profile_name: str
    onnx_path: str
    plan_path: str
    inputs: Mapping[str, Mapping[str, Any]]  # the manifest's symbolic input shapes
    input_shapes: Mapping[str, Sequence[Sequence[int]]]  # name -> (min, opt, max)
    settings: BuildSettings
    target_compute: Sequence[str]
    trt_module: str
    timing_cache_path: str | None


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)


def build_plan(job: PlanJob) -> dict[str, Any]:
    """Build and write the plan; returns ``{"build_seconds", "bytes", "peak_rss_gb"}``."""
    trt = import_trt(job.trt_module)
    logger = make_logger(trt)
    started = time.perf_counter()
    builder = trt.Builder(logger)
    network, parser = parse_onnx(
        trt, builder, logger, Path(job.onnx_path), strongly_typed=job.settings.strongly_typed
    )
    check_network_inputs(network, job.inputs, job.component)
    config = configure(trt, builder, job.settings, compute_capabilities(trt, job.target_compute))
    if job.timing_cache_path:
        load_timing_cache(config, Path(job.timing_cache_path))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in job.input_shapes.items():
        profile.set_shape(name, tuple(lo), tuple(opt), tuple(hi))
    config.add_optimization_profile(profile)
    monitor = make_progress_monitor(trt, job.component)
    if monitor is not None:
        config.progress_monitor = monitor
    log.info(
        "%s: building plan %s (parsed in %.1f s)",
        job.component,
        job.profile_name,
        time.perf_counter() - started,
    )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        errors = "\n  ".join(logger.take_errors() or ["(no error reported)"])
        raise TrtBuildError(
            f"{job.component}: TensorRT built no plan for profile {job.profile_name}:\n  {errors}"
        )
    if job.timing_cache_path:
        save_timing_cache(config, Path(job.timing_cache_path))
    del parser, network, config, builder, monitor
    gc.collect()
    write_atomic(Path(job.plan_path), memoryview(serialized))
    size = Path(job.plan_path).stat().st_size
    del serialized
    gc.collect()
    seconds = time.perf_counter() - started
    result = {"build_seconds": round(seconds, 2), "bytes": size, "peak_rss_gb": round(peak_rss_gb(), 2)}
    log.info(
        "%s: wrote %s (%.1f MB) in %.1f s, peak RSS %.1f GB",
        job.component,
        job.plan_path,
        size / 1e6,
        seconds,
        result["peak_rss_gb"],
    )
    return result


def _child_main(job: dict[str, Any], level: int) -> dict[str, Any]:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    job["settings"] = BuildSettings(**job["settings"])
    return build_plan(PlanJob(**job))


def build_plan_isolated(job: PlanJob) -> dict[str, Any]:
    """``build_plan`` in a spawned child process: the parent's memory stays as it was."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    payload = asdict(job)
    level = logging.getLogger("sdrt").getEffectiveLevel()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_child_main, payload, level).result()
        except BrokenProcessPool as error:
            raise TrtBuildError(
                f"{job.component}: the TensorRT build process for profile {job.profile_name} died (killed for "
                "memory? a TensorRT crash?); free memory, or build in this process with isolate=False "
                "(from a script, call it under `if __name__ == '__main__':`)"
            ) from error
