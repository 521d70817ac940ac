"""Per-stage timers of ``sdrt bench``: clocks, a recorder of stage spans, and the figures made from them.

A :class:`StageRecorder` collects (stage, start mark, end mark) while a generation runs; the durations are
read only after the run. On the host the marks are ``time.perf_counter()`` readings; on a GPU they are
CUDA events recorded on the caller's current stream (:class:`CupyEventClock`, or torch's events for
diffusers), so timing adds no synchronization inside the run: the events are waited for once, at the end.

:func:`instrument_pipeline` installs the recorder around an sdrt pipeline's component calls (text
encoders, UNet, VAE decoder) and its denoising loop, by wrapping those objects' methods on the instances
only; images are unchanged and the wrappers are removed by the returned function.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: stage names, as the report and the JSON spell them
TEXT_ENCODER, UNET, DENOISE_LOOP, VAE_DECODE = "text_encoder", "unet", "denoise_loop", "vae_decode"


class HostClock:
    """Wall-clock marks (CPU work is done when the call returns)."""

    def mark(self) -> float:
        return time.perf_counter()

    def settle(self, last: Any) -> None:
        """Nothing to wait for on the host."""

    def seconds(self, start: float, end: float) -> float:
        return end - start


class CupyEventClock:
    """CUDA events on CuPy's current stream; :meth:`settle` waits for the last one after the run."""

    def __init__(self) -> None:
        import cupy

        self._cupy = cupy

    def mark(self) -> Any:
        event = self._cupy.cuda.Event()
        event.record()
        return event

    def settle(self, last: Any) -> None:
        last.synchronize()

    def seconds(self, start: Any, end: Any) -> float:
        return float(self._cupy.cuda.get_elapsed_time(start, end)) / 1000.0


class StageRecorder:
    """Spans of named stages during one run; ``probe`` (optional) is called at each stage end."""

    def __init__(self, clock: Any, probe: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.probe = probe
        self._spans: list[tuple[str, Any, Any]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self.clock.mark()
        try:
            yield
        finally:
            self._spans.append((name, start, self.clock.mark()))
            if self.probe is not None:
                self.probe()

    def take(self) -> dict[str, list[float]]:
        """Seconds of each stage's spans, in call order, and forget them (call after the run)."""
        if self._spans:
            self.clock.settle(self._spans[-1][2])
        durations: dict[str, list[float]] = {}
        for name, start, end in self._spans:
            durations.setdefault(name, []).append(self.clock.seconds(start, end))
        self._spans = []
        return durations


def wrap_method(obj: Any, attr: str, recorder: StageRecorder, stage: str) -> Callable[[], None]:
    """Replace ``obj.attr`` by a timed call of it on this instance only; return the undo."""
    had_own = attr in vars(obj)
    original = getattr(obj, attr)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with recorder.stage(stage):
            return original(*args, **kwargs)

    setattr(obj, attr, timed)

    def undo() -> None:
        if had_own:
            setattr(obj, attr, original)
        else:
            delattr(obj, attr)

    return undo


def instrument_pipeline(pipe: Any, recorder: StageRecorder) -> Callable[[], None]:
    """Time an sdrt pipeline's text encoders, UNet, VAE decoder and denoising loop; return the undo."""
    undos = []
    for name in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, name, None) is not None:
            undos.append(wrap_method(getattr(pipe, name), "run", recorder, TEXT_ENCODER))
    undos.append(wrap_method(pipe.unet, "run", recorder, UNET))
    decoder = getattr(getattr(pipe, "vae", None), "decoder", None)
    if decoder is not None:
        undos.append(wrap_method(decoder, "run", recorder, VAE_DECODE))
    undos.append(wrap_method(pipe, "denoise", recorder, DENOISE_LOOP))

    def undo() -> None:
        for step in reversed(undos):
            step()

    return undo


def run_figures(durations: dict[str, list[float]], pipeline_s: float) -> dict[str, Any]:
    """One run's figures (seconds) from its stage spans and its whole-pipeline time."""
    unet_calls = durations.get(UNET, [])
    figures: dict[str, Any] = {
        "pipeline_s": pipeline_s,
        "unet_calls_s": unet_calls,
        "unet_s": sum(unet_calls),
    }
    if TEXT_ENCODER in durations:
        figures["text_encoder_s"] = sum(durations[TEXT_ENCODER])
        figures["text_encoder_calls"] = len(durations[TEXT_ENCODER])
    if VAE_DECODE in durations:
        figures["vae_decode_s"] = sum(durations[VAE_DECODE])
    if DENOISE_LOOP in durations:
        loop = sum(durations[DENOISE_LOOP])
        figures["denoise_loop_s"] = loop
        if unet_calls:
            figures["loop_overhead_per_step_s"] = (loop - sum(unet_calls)) / len(unet_calls)
    return figures


def summary(values: list[float]) -> dict[str, float]:
    """median, min, max, mean (seconds) and the count of ``values``."""
    return {
        "median_s": statistics.median(values),
        "min_s": min(values),
        "max_s": max(values),
        "mean_s": statistics.fmean(values),
        "n": len(values),
    }


def aggregate(runs: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """Summaries over the timed runs: per stage, UNet per step (every call of every run) and x N, images/s."""
    stages: dict[str, Any] = {
        "pipeline": summary([r["pipeline_s"] for r in runs]),
        "unet_per_step": summary([t for r in runs for t in r["unet_calls_s"]]),
        "unet_total": summary([r["unet_s"] for r in runs]),
    }
    for key, name in (
        ("text_encoder_s", "text_encoder"),
        ("denoise_loop_s", "denoise_loop"),
        ("loop_overhead_per_step_s", "loop_overhead_per_step"),
        ("vae_decode_s", "vae_decode"),
    ):
        if all(key in r for r in runs):
            stages[name] = summary([r[key] for r in runs])
    counts = {"unet_calls_per_run": len(runs[0]["unet_calls_s"])}
    if "text_encoder_calls" in runs[0]:
        counts["text_encoder_calls_per_run"] = runs[0]["text_encoder_calls"]
    return {
        "stages": stages,
        **counts,
        "images_per_s": batch / stages["pipeline"]["median_s"],
    }
