"""The bench stage: ``sdrt bench`` itself on the built bundle (its CUDA-event stage clock; diffusers is
timed by the timing stage)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .shared import Setup


def stage_bench(s: Setup) -> dict[str, Any]:
    out = s.out / "bench.json"
    command = [sys.executable, "-c", "import sys; from sdrt.cli.sdrt import main; sys.exit(main())"]
    command += ["bench", str(s.bundle), "--provider", s.provider, "--steps", str(s.steps)]
    command += ["--runs", "3", "--warmup", "1", "--json", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": "sdrt bench timed out"}
    tail = (done.stdout + done.stderr).strip().splitlines()[-12:]
    if done.returncode != 0 or not out.is_file():
        return {"status": "error", "error": f"sdrt bench exited with {done.returncode}", "tail": tail}
    return {"printed": tail, "figures": json.loads(out.read_text())}
