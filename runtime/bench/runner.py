"""The two sides of ``sdrt bench``: sdrt's pipeline on a bundle (:class:`SdrtRunner`), and the interface
another library's side implements (:class:`Reference`, :class:`Runner`: diffusers' is in the export stage,
where torch may be imported). A runner makes one generation per ``run()``, timed per stage."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sdrt.runtime.backends import AUTO, BACKENDS, get_backend
from sdrt.runtime.bundle.bundle import Bundle

from .stages import CupyEventClock, HostClock, StageRecorder, instrument_pipeline, run_figures

logger = logging.getLogger(__name__)


class Runner(Protocol):
    library: str  # the key of its figures in the result ("sdrt", "diffusers")
    load_s: float

    def run(self) -> dict[str, Any]: ...
    def describe(self) -> dict[str, Any]: ...
    def memory_figures(self) -> dict[str, float]: ...
    def close(self) -> None: ...


class Reference(Protocol):
    """Another library timed beside sdrt on the weights the bundle was built from."""

    source: str  # what it runs, for the report (a model folder)

    def check(self, bundle: Bundle) -> None:
        """Refuse, before anything is loaded, a source that is not what ``bundle`` was built from."""

    def runner(self, settings: BenchSettings, sdrt: dict[str, Any]) -> Runner:
        """Load it, set like sdrt's side (``sdrt``: what :meth:`SdrtRunner.describe` says); diffusers'
        loads in a process of its own (:class:`~sdrt.runtime.bench.process.ProcessRunner`)."""


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
    if provider.lower() == AUTO:
        names = list(dict.fromkeys(name for backend in BACKENDS.values() for name in backend.imports))
    else:
        names = list(get_backend(provider).imports)
    for name in names:
        if importlib.util.find_spec(name) is not None:
            try:
                importlib.import_module(name)
            except Exception:  # a broken install fails later, where the provider is chosen, with its message
                logger.debug("could not import %s", name, exc_info=True)


def _may_use_gpu(provider: str) -> bool:
    return provider.lower() == AUTO or get_backend(provider).on_gpu


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
        self.memory = _device_memory() if _may_use_gpu(settings.provider) else None
        pipe = DiffusionPipeline.from_pretrained(bundle, provider=settings.provider)
        if settings.scheduler:
            from sdrt.schedulers import get_scheduler_class

            pipe.scheduler = get_scheduler_class(settings.scheduler).from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.load_s = time.perf_counter() - start
        self.pipe: Any = pipe  # text-to-image or unconditional: their calls differ
        if pipe.xp is np:
            clock: Any = HostClock()
            self.memory = None
        else:
            clock = CupyEventClock()
            self.memory = self.memory or DeviceMemory()
        self.recorder = StageRecorder(clock, probe=self.memory.sample if self.memory else None)
        self.undo = instrument_pipeline(pipe, self.recorder)

    def describe(self) -> dict[str, Any]:
        unet_engine = getattr(getattr(self.pipe, "unet", None), "engine", None)
        precision = get_backend(self.pipe.provider).precision_label(unet_engine, self.pipe.bundle)
        return {
            "provider": self.pipe.provider,
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "precision": precision,
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
