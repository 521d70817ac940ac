"""Build progress: TensorRT's ``IProgressMonitor`` phases as log lines (two top levels at INFO)."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)


def make_progress_monitor(trt: Any, label: str) -> Any | None:
    """An ``IProgressMonitor`` logging each phase with its duration, or None if the module has none."""
    if getattr(trt, "IProgressMonitor", None) is None:
        return None

    class LoggingMonitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.started: dict[str, float] = {}
            self.depth: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.started[phase_name] = time.perf_counter()
            self.depth[phase_name] = 0 if parent_phase is None else self.depth.get(parent_phase, 0) + 1
            level = logging.INFO if self.depth[phase_name] <= 1 else logging.DEBUG
            log.log(level, "%s: %s%s (%d steps)", label, "  " * self.depth[phase_name], phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            seconds = time.perf_counter() - self.started.pop(phase_name, time.perf_counter())
            level = logging.INFO if self.depth.pop(phase_name, 2) <= 1 else logging.DEBUG
            log.log(level, "%s: %s done in %.1f s", label, phase_name, seconds)

    return LoggingMonitor()
