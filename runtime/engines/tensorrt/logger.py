"""A TensorRT logger that forwards to Python logging and keeps the errors for exception messages."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

log = logging.getLogger("sdrt.tensorrt")

# TensorRT severities by name (same in tensorrt and tensorrt_rtx); INFO is chatty, so it goes to DEBUG.
_LEVELS = {
    "INTERNAL_ERROR": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "INFO": logging.DEBUG,
    "VERBOSE": logging.DEBUG,
}


def make_logger(trt: ModuleType, *, keep: int = 50) -> Any:
    """Return an ``ILogger`` of module ``trt``; its ``errors`` list holds the last ``keep`` error lines."""

    base: Any = trt.ILogger  # the TensorRT module is passed in (tensorrt or tensorrt_rtx)

    class CapturingLogger(base):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            level = _LEVELS.get(getattr(severity, "name", ""), logging.INFO)
            log.log(level, "%s", msg)
            if level >= logging.ERROR:
                self.errors.append(msg)
                del self.errors[:-keep]

        def take_errors(self) -> list[str]:
            errors, self.errors = self.errors, []
            return errors

    return CapturingLogger()
