"""Bundle writing: skip-if-unchanged, --force, atomic replacement, manifest reading."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from sdrt.export import build, export_pipeline  # noqa: E402
from sdrt.runtime.bundle.manifest import FORMAT_VERSION, read_manifest  # noqa: E402

OPTIONS = dict(backend="ort", min_size=16, max_size=32, max_batch=2, progress=False)


@pytest.fixture(scope="module")
def built(model_folders, tmp_path_factory):
    model = model_folders("uncond")
    out = tmp_path_factory.mktemp("bundle") / "engines" / "cats"
    report = export_pipeline(model, out, **OPTIONS)
    return model, out, report


def _snapshot(bundle):
    return {p.relative_to(bundle): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}


def test_manifest_fields(built):
    """The manifest's JSON, as any reader of the bundle format sees it."""
    model, out, report = built
    m = json.loads((out / "manifest.json").read_text())
    assert m["format_version"] == FORMAT_VERSION
    assert m["pipeline_class"] == "DDPMPipeline"
    assert m["source"]["path"] == str(model.resolve()) and len(m["source"]["weights_sha256"]) == 64
    assert set(m["tools"]) >= {"sdrt", "torch", "diffusers", "transformers", "onnx", "onnxruntime"}
    assert m["shapes"]["height"] == [16, 32] and m["shapes"]["batch"] == [1, 2]
    unet = m["components"]["unet"]
    assert list(unet["inputs"]) == ["sample", "timestep"] and unet["inputs"]["timestep"]["dtype"] == "float32"
    assert unet["inputs"]["timestep"]["shape"] == ["batch"]
    assert unet["dims"]["height"] == [16, 32] and not unet["static"]
    assert unet["external_data"] is False and unet["bytes"] > 0
    assert unet["ort"]["provider"] == "cpu" and unet["ort"]["file"] == "ort/unet.onnx"
    assert unet["export_seconds"] > 0
    assert m["vae"] is None and m["unet"]["class"] == "UNet2DModel"
    assert [c.status for c in report.components] == ["built"]
    assert not list(out.parent.glob(".cats.*")), "temporary folders left behind"


def test_rerun_skips_unchanged_and_force_rebuilds(built):
    model, out, _ = built
    before = json.loads((out / "manifest.json").read_text())
    report = export_pipeline(model, out, **OPTIONS)
    assert [c.status for c in report.components] == ["unchanged"]
    after = json.loads((out / "manifest.json").read_text())
    assert after["components"] == before["components"]
    report = export_pipeline(model, out, force=True, **OPTIONS)
    assert [c.status for c in report.components] == ["built"]


def test_changed_option_rebuilds(built, tmp_path):
    model, out, _ = built
    other = tmp_path / "other"
    export_pipeline(model, other, **OPTIONS)
    report = export_pipeline(model, other, **{**OPTIONS, "max_size": 48})
    assert [c.status for c in report.components] == ["built"]
    assert read_manifest(other).components["unet"].dims["height"] == (16, 48)


def test_interrupted_build_keeps_old_bundle(built, monkeypatch):
    model, out, _ = built
    before = _snapshot(out)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of the build")

    monkeypatch.setattr(build, "build_component", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_pipeline(model, out, force=True, **OPTIONS)
    assert _snapshot(out) == before
    assert not list(out.parent.glob(".cats.*")), "temporary folders left behind"


def test_interrupted_first_build_leaves_no_bundle(model_folders, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "build_component", boom)
    out = tmp_path / "engines" / "new"
    with pytest.raises(KeyboardInterrupt):
        export_pipeline(model_folders("uncond"), out, **OPTIONS)
    assert not out.exists()
    assert list((tmp_path / "engines").iterdir()) == []


def test_build_fills_this_machines_graph_cache(built):
    """build-engine ends by opening the CPU graphs once, so the first load after it opens the cached
    *all*-level graph (tests/conftest.py points SDRT_CACHE_DIR at the session's own folder)."""
    import os
    from pathlib import Path

    from sdrt.runtime.engines.ort.engine import OrtEngine

    _, out, _ = built
    engine = OrtEngine(out / "ort" / "unet.onnx", name="unet")
    assert Path(os.environ["SDRT_CACHE_DIR"]) / "ort" in engine.graph_path.parents
