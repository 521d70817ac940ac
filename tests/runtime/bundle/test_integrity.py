"""Damaged or edited bundles and caches are refused, not run: an edited manifest (sealed by
``manifest.sha256``), weights changed at the same size (sha256 at the first load of a build), an
edited cached ORT graph (``sdrt inspect --verify``), and a folder a kill left half-deleted by the
swap's cleanup (never restored)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sdrt.runtime.bundle import swap
from sdrt.runtime.bundle.bundle import open_bundle
from sdrt.runtime.bundle.manifest import SEAL_NAME, read_manifest
from sdrt.runtime.errors import BundleError, BundleNotFoundError


def _flip(path: Path) -> None:
    """One bit changed in the middle: the size stays, the sha256 does not."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _sdrt(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("sdrt"), *argv], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def bundle(tiny, tmp_path) -> Path:
    return shutil.copytree(tiny.bundle("sd1"), tmp_path / "bundle")


def test_an_edited_manifest_field_is_refused(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["vae"]["scaling_factor"] *= 2
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with pytest.raises(BundleError, match="is damaged or was edited after the build.*--force"):
        read_manifest(bundle)
    done = _sdrt("generate", str(bundle), "a cat", "--steps", "1", "-o", str(bundle.parent / "x.png"))
    assert done.returncode == 2, done.stderr
    assert "manifest.json is damaged or was edited" in done.stderr and "manifest.sha256" in done.stderr
    assert "Traceback" not in done.stderr and not (bundle.parent / "x.png").exists()


def test_a_bundle_from_before_the_seal_reads_with_a_warning(bundle, caplog):
    (bundle / SEAL_NAME).unlink()
    with caplog.at_level(logging.WARNING):
        assert read_manifest(bundle).model_type == "sd1"
    assert "has no manifest.sha256" in caplog.text and "--force" in caplog.text


def test_weights_changed_at_the_same_size_are_refused_at_the_first_load(bundle):
    from sdrt.runtime import StableDiffusionPipeline

    _flip(bundle / "ort" / "text_encoder.onnx")
    with pytest.raises(
        BundleError, match="files are damaged.*text_encoder.onnx does not match its sha256.*--force"
    ):
        StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")


def test_a_verified_build_is_hashed_once_then_sizes_only(bundle, monkeypatch):
    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.bundle import integrity

    StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")  # the first load hashes, records it
    hashed = []
    monkeypatch.setattr(integrity, "file_sha256", lambda path: hashed.append(path) or "")
    StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    assert hashed == []
    decoder = bundle / "ort" / "vae_decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:-1] + b"")
    with pytest.raises(Exception, match="vae_decoder"):  # a size change: at every load
        StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")


def test_verify_catches_an_edited_cached_graph(bundle, tmp_path):
    env = {**os.environ, "SDRT_CACHE_DIR": str(tmp_path / "cache")}
    assert (
        _sdrt(
            "generate", str(bundle), "a cat", "--steps", "1", "-o", str(tmp_path / "x.png"), env=env
        ).returncode
        == 0
    )
    done = _sdrt("inspect", str(bundle), "--verify", env=env)
    assert done.returncode == 0, done.stderr
    assert "ONNX Runtime CPU graphs" in done.stdout and "match their sha256" in done.stdout
    entries = sorted((tmp_path / "cache" / "ort").glob("unet-*"))
    assert len(entries) == 1
    _flip(max(entries[0].iterdir(), key=lambda f: f.stat().st_size))  # the weights of the cached graph
    done = _sdrt("inspect", str(bundle), "--verify", env=env)
    assert done.returncode == 2, done.stdout
    assert "per-machine cache is damaged" in done.stderr and "does not match its sha256" in done.stderr
    assert "rm -r" in done.stderr and "Traceback" not in done.stderr


def test_a_kill_during_the_cleanup_leaves_nothing_restorable(bundle):
    """The cleanup renames ``.NAME.old-PID`` to ``.NAME.trash-*`` before deleting it: a kill leaves a
    half-deleted trash folder, which recovery removes and never takes for the bundle."""
    old = bundle.with_name(f".{bundle.name}.old-123")
    shutil.copytree(bundle, old)
    trash = bundle.with_name(f".{bundle.name}.trash-1-123")
    old.rename(trash)
    shutil.rmtree(trash / "ort")  # what a kill during rmtree leaves
    assert swap.old_folders(bundle) == []
    open_bundle(bundle)
    swap.recover_swap(bundle)
    assert not trash.exists() and (bundle / "ort").is_dir()
    # with the bundle gone too, the trash is not restored: the folder is "no bundle", not a half one
    shutil.copytree(bundle, trash)
    shutil.rmtree(trash / "ort")
    shutil.rmtree(bundle)
    with pytest.raises(BundleNotFoundError):
        open_bundle(bundle)
    assert not bundle.exists()


def test_the_swap_cleanup_deletes_through_a_trash_name(tmp_path, monkeypatch):
    target, work = tmp_path / "b", tmp_path / "work"
    for folder, text in ((target, "old"), (work, "new")):
        folder.mkdir()
        (folder / "f").write_text(text)
    renamed = []
    real = Path.rename
    monkeypatch.setattr(Path, "rename", lambda self, to: renamed.append(Path(to).name) or real(self, to))
    swap.swap_in(work, target)
    assert (target / "f").read_text() == "new"
    assert any(".b.trash-" in name for name in renamed), renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
