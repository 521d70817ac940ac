"""SD1.5-sized UNet (real config, random weights): exports with external data and validates (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sd15_unet_exports_with_external_data(tmp_path):
    report = tmp_path / "figures.json"
    subprocess.run(
        [sys.executable, "-m", "tests.export.sd15_unet", str(tmp_path / "out"), "--json", str(report)],
        cwd=ROOT,
        check=True,
    )
    figures = json.loads(report.read_text())
    assert 850e6 < figures["parameters"] < 870e6
    assert figures["external_data"] is True
    assert figures["data_files"] == ["unet.onnx", "unet.onnx_data"]
    assert figures["graph_file_bytes"] < 50e6
    assert figures["validation"]["value"] <= 1e-4
