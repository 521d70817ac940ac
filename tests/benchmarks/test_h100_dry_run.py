"""benchmarks/h100/ (issue 8's one-call device check) in its --cpu-dry-run mode: the same code path on a
tiny model with CPU providers, so the device call does not fail on a typo."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("onnxruntime.transformers.optimizer")

from benchmarks import h100  # noqa: E402


def _run(tmp_path, stages: list[str]) -> dict:
    out = tmp_path / "out"
    argv = ["--cpu-dry-run", "--out", str(out), "--work", str(tmp_path / "work"), "--stages", *stages]
    code = h100.main(argv)
    report = json.loads((out / "h100.json").read_text())
    assert code == 0, json.dumps(report, indent=1)[:3000]
    assert (out / "h100.txt").read_text().strip()
    return report


# suite time; the device script's stages are the export and runtime tests' paths
@pytest.mark.slow
def test_dry_run_build_and_parity(tmp_path):
    report = _run(tmp_path, ["env", "model", "build", "parity", "sync"])
    stages = report["stages"]
    assert report["dry_run"] and all(s["status"] in ("ok", "skipped") for s in stages.values())
    build = stages["build"]
    assert build["unet"]["fused"]["MultiHeadAttention"] > 0 and build["unet"]["casts"] <= 4
    assert build["unet"]["gate"] in ("pending", "passed")
    assert stages["parity"]["psnr_db"] >= h100.PARITY_MIN_DB
    assert stages["sync"]["status"] == "skipped"


@pytest.mark.slow
def test_dry_run_all_stages(tmp_path):
    report = _run(tmp_path, ["env", "model", "build", "parity", "sync", "pytest", "timing"])
    rows = report["stages"]["timing"]["rows"]
    assert {"sdrt", "diffusers eager", "diffusers torch.compile (UNet)"} <= set(rows)
    for name in ("sdrt", "diffusers eager", "diffusers torch.compile (UNet)"):
        assert all(rows[name][k] > 0 for k in ("unet_ms", "vae_ms", "text_ms", "image_ms")), name
