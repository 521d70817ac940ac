"""A bench runner in a process of its own: the comparison library's side of ``sdrt bench``.

diffusers timed in the process that has just run sdrt's engines shares that process's thread pools and
allocator with them (OpenVINO's and torch's threads, for one, and the memory the engines left), which
can slow it. So its side runs in a child process (``python -m MODULE``), driven one generation at a time
over the child's stdin and stdout with JSON lines; the parent waits while the child works, so the runs
still alternate and both libraries see the same machine load.

Protocol: the parent writes the request (one JSON object); the child loads and answers
``{"load_s", "describe", "pid"}`` or ``{"error", "kind"}``; then to each of ``"run"``, ``"memory"`` and
``"close"`` it answers one JSON object (a run's figures; its memory figures; its memory figures, then it
exits). :func:`serve_runner` is the child's side, :class:`ProcessRunner` the parent's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from typing import IO, Any

from sdrt.runtime.errors import EngineError, InputError, ProviderNotAvailableError, SdrtError

from .runner import Runner, peak_rss_mib

logger = logging.getLogger(__name__)

#: the errors a child's answer may name, re-raised as such in the parent (others: EngineError)
_ERRORS: dict[str, type[SdrtError]] = {
    "ProviderNotAvailableError": ProviderNotAvailableError,
    "InputError": InputError,
}


class ProcessRunner:
    """The parent's side: a :class:`~sdrt.runtime.bench.runner.Runner` whose work runs in ``python -m module``."""

    def __init__(self, module: str, library: str, request: dict[str, Any]) -> None:
        self.library = library
        self._process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send(request)
        loaded = self._receive()
        self.load_s: float = loaded["load_s"]
        self.pid: int = loaded["pid"]
        self._describe: dict[str, Any] = loaded["describe"]
        logger.info("%s runs in process %d (this one: %d)", library, self.pid, os.getpid())

    def _send(self, message: Any) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise EngineError(
                f"the {self.library} bench process ended (exit status {code}) without an answer; "
                "its messages are above"
            )
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            self._process.wait()
            raise _ERRORS.get(answer["kind"], EngineError)(answer["error"])
        return answer

    def run(self) -> dict[str, Any]:
        self._send("run")
        return self._receive()

    def describe(self) -> dict[str, Any]:
        return {**self._describe, "process": "separate", "pid": self.pid}

    def memory_figures(self) -> dict[str, float]:
        """The child's own figures, its peak host RSS among them."""
        self._send("memory")
        return self._receive()

    def close(self) -> None:
        if self._process.poll() is None:
            self._send("close")
            self._receive()
            self._process.wait()


def _answer(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve_runner(make: Callable[[dict[str, Any]], Runner]) -> None:
    """The child's side: read the request, ``make`` the runner (timing its load), answer commands until
    ``"close"`` or the end of the input (``load_s``: the runner's own, imports not counted). Anything printed goes to stderr: stdout carries the answers only."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    request = json.loads(sys.stdin.readline())
    try:
        runner = make(request)
    except SdrtError as error:
        _answer(out, {"error": str(error), "kind": type(error).__name__})
        return
    _answer(out, {"load_s": runner.load_s, "describe": runner.describe(), "pid": os.getpid()})
    for line in sys.stdin:
        command = json.loads(line)
        if command == "run":
            _answer(out, runner.run())
        else:  # "memory" or "close"
            _answer(out, {"peak_rss_mib": peak_rss_mib(), **runner.memory_figures()})
            if command == "close":
                runner.close()
                return
