"""The child process of ``sdrt bench --compare-diffusers``: diffusers' side, alone in its process.

python -m sdrt.export.diffusers_process    (started by the bench; see sdrt.runtime.bench.process)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrt.runtime.bench.process import serve_runner
from sdrt.runtime.bench.runner import BenchSettings

from .diffusers_reference import DiffusersRunner


def make_runner(request: dict[str, Any]) -> DiffusersRunner:
    """diffusers as the parent's :meth:`DiffusersReference.runner` asked (the request is its JSON)."""
    return DiffusersRunner(
        Path(request["model_dir"]),
        BenchSettings(**request["settings"]),
        scheduler=request["scheduler"],
        on_gpu=request["on_gpu"],
        dtype=request["dtype"],
    )


def main() -> None:
    serve_runner(make_runner)


if __name__ == "__main__":
    main()
