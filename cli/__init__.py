"""The command lines: ``build-engine`` (``build_engine``) and ``sdrt`` (``sdrt``: generate, inspect, bench).

The top layer: it may import the runtime and the export, and nothing imports it. A command parses its
arguments, calls library functions with explicit keywords, prints; :func:`run` turns any error of
sdrt's own (``SdrtError``) into one line on stderr and exit status 2; a closed stdout (``| head``) ends it
quietly with status 141, as Unix tools. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from sdrt.runtime.errors import SdrtError


def run(prog: str, command: Callable[[], int]) -> int:
    """``command()``'s exit status; 2 with ``prog: error: ...`` on stderr for an ``SdrtError``."""
    try:
        return command()
    except SdrtError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        print(f"{prog}: error: {'; '.join(lines) or type(error).__name__}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sdrt inspect B | head -1`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit fails no more
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the signal ended
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
