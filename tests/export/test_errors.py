"""Bad input: a clear error naming the input and the fix, exit code 2, and no bundle written."""

from __future__ import annotations

import json
import shutil

import pytest

from sdrt.cli.build_engine import main


def _run(capsys, args):
    code = main([*map(str, args), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    return err


def _no_bundle(out):
    assert not out.exists() or not any(out.iterdir())
    assert not list(out.parent.glob(f".{out.name}.*")) if out.parent.exists() else True


@pytest.fixture
def sd1_copy(model_folders, tmp_path):
    return shutil.copytree(model_folders("sd1"), tmp_path / "model")


def test_not_a_diffusers_folder(capsys, tmp_path):
    (tmp_path / "stuff").mkdir()
    out = tmp_path / "out"
    err = _run(capsys, [tmp_path / "stuff", "-o", out])
    assert "not a diffusers model folder" in err and "model_index.json" in err
    _no_bundle(out)


def test_missing_folder(capsys, tmp_path):
    err = _run(capsys, [tmp_path / "nowhere", "-o", tmp_path / "out"])
    assert "does not exist" in err


@pytest.mark.parametrize(
    ("name", "said"), [("model.ckpt", "is a pickle"), ("model.safetensors", "is damaged or truncated")]
)
def test_single_file_checkpoint(capsys, tmp_path, name, said):
    """A single file is read as a checkpoint (tests/export/test_single_file.py); these two cannot be."""
    path = tmp_path / name
    path.write_bytes(b"\0" * 16)
    err = _run(capsys, [path, "-o", tmp_path / "out"])
    assert said in err
    _no_bundle(tmp_path / "out")


def test_folder_holding_only_a_checkpoint(capsys, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "v1-5.safetensors").write_bytes(b"\0")
    err = _run(capsys, [tmp_path / "m", "-o", tmp_path / "out"])
    assert "single-file checkpoint; pass the file itself" in err


def test_missing_component(capsys, sd1_copy, tmp_path):
    shutil.rmtree(sd1_copy / "unet")
    out = tmp_path / "out"
    err = _run(capsys, [sd1_copy, "-o", out])
    assert "'unet' is missing" in err
    _no_bundle(out)


def test_unsupported_class(capsys, sd1_copy, tmp_path):
    index = json.loads((sd1_copy / "model_index.json").read_text())
    index["unet"] = ["diffusers", "UNet3DConditionModel"]
    (sd1_copy / "model_index.json").write_text(json.dumps(index))
    err = _run(capsys, [sd1_copy, "-o", tmp_path / "out"])
    assert "UNet3DConditionModel" in err and "supported: UNet2DConditionModel" in err


def test_unsupported_pipeline(capsys, sd1_copy, tmp_path):
    index = json.loads((sd1_copy / "model_index.json").read_text())
    index["_class_name"] = "FluxPipeline"
    (sd1_copy / "model_index.json").write_text(json.dumps(index))
    err = _run(capsys, [sd1_copy, "-o", tmp_path / "out"])
    assert "FluxPipeline" in err and "not supported" in err


def test_unwritable_output(capsys, model_folders, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _run(capsys, [model_folders("uncond"), "-o", blocker / "engines" / "x"])
    assert "choose a writable -o" in err
    err = _run(capsys, [model_folders("uncond"), "-o", blocker])
    assert "is a file" in err


def test_output_not_a_bundle_is_not_replaced(capsys, model_folders, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    err = _run(capsys, [model_folders("uncond"), "-o", out])
    assert "refusing to replace" in err
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--height", "60", "--width", "64"], "--height 60 is not a multiple of 8; use 56 or 64"),
        (["--min-size", "40", "--max-size", "64"], "--min-size 40 is not a multiple of 16"),
        (["--min-size", "64", "--max-size", "32"], "--min-size 64 is above --max-size 32"),
        (["--batch", "3", "--max-batch", "2"], "--max-batch 2 is below --batch 3"),
        (["--height", "64", "--min-size", "32"], "not both"),
    ],
)
def test_bad_sizes(capsys, model_folders, tmp_path, options, message):
    out = tmp_path / "out"
    err = _run(capsys, [model_folders("sd1"), "-o", out, *options])
    assert message in err
    _no_bundle(out)


def test_unknown_component_for_model(capsys, model_folders, tmp_path):
    err = _run(capsys, [model_folders("sd1"), "-o", tmp_path / "out", "--components", "text_encoder_2"])
    assert "text_encoder_2" in err and "choose from" in err


def test_damaged_weights(capsys, sd1_copy, tmp_path):
    weights = next((sd1_copy / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    err = _run(capsys, [sd1_copy, "-o", tmp_path / "out"])
    assert "cannot load UNet2DConditionModel" in err and "download them again" in err
    _no_bundle(tmp_path / "out")


def test_zeroed_weights_are_not_validated_as_fine(capsys, sd1_copy, tmp_path):
    from safetensors.numpy import load_file, save_file

    weights = next((sd1_copy / "unet").glob("*.safetensors"))
    save_file({k: v * 0 for k, v in load_file(weights).items()}, weights)
    err = _run(capsys, [sd1_copy, "-o", tmp_path / "out", "--components", "unet"])
    assert "the torch unet gives the same value (0) everywhere" in err and "zeroed" in err
    _no_bundle(tmp_path / "out")


@pytest.mark.parametrize(("content", "message"), [("{ not json", "cannot read"), ("[1, 2]", "JSON object")])
def test_damaged_scheduler_config(capsys, sd1_copy, tmp_path, content, message):
    (sd1_copy / "scheduler" / "scheduler_config.json").write_text(content)
    err = _run(capsys, [sd1_copy, "-o", tmp_path / "out"])
    assert message in err and "scheduler_config.json" in err


def test_size_beyond_what_any_backend_runs(capsys, model_folders, tmp_path):
    err = _run(capsys, [model_folders("sd1"), "-o", tmp_path / "out", "--max-size", "100000"])
    assert "--max-size 100000 is above the 8192 pixels" in err


def test_components_that_would_be_lost_are_refused(capsys, model_folders, tmp_path):
    out = tmp_path / "out"
    assert main([str(model_folders("sd1")), "-o", str(out), "--max-size", "64", "--no-validate", "-q"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    err = _run(capsys, [model_folders("sd1"), "-o", out, "--max-size", "128", "--components", "unet"])
    assert "leaves out text_encoder, vae_encoder, vae_decoder" in err
    assert "run again with --components unet text_encoder vae_encoder vae_decoder" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_disk_full_is_one_line(capsys, model_folders, tmp_path, monkeypatch):
    import errno

    from sdrt.export import bundle_writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle_writer, "copy_tokenizer", full)
    err = _run(capsys, [model_folders("sd1"), "-o", tmp_path / "out", "--no-validate", "--max-size", "64"])
    assert "No space left on device" in err and "free space or choose another -o" in err
    _no_bundle(tmp_path / "out")


def test_truncated_file_is_rebuilt_not_taken_over(model_folders, tmp_path):
    from sdrt.export import export_pipeline

    out = tmp_path / "out"
    options = dict(max_size=64, progress=False, validate=False)
    export_pipeline(model_folders("uncond"), out, **options)
    graph = out / "ort" / "unet.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    report = export_pipeline(model_folders("uncond"), out, **options)
    assert [c.status for c in report.components] == ["built"]
    assert graph.stat().st_size > 1000


@pytest.mark.parametrize(
    ("kind", "skip", "message"),
    [
        ("sd1", "2", "--clip-skip 2 must be a whole number from 1 to 1"),
        ("uncond", "1", "has no text encoder"),
    ],
)
def test_clip_skip_outside_the_text_encoder(capsys, model_folders, tmp_path, kind, skip, message):
    err = _run(capsys, [model_folders(kind), "-o", tmp_path / "out", "--clip-skip", skip])
    assert message in err
    _no_bundle(tmp_path / "out")


@pytest.mark.parametrize("depth", [1, 3])
def test_a_self_referencing_pickle_is_refused_not_walked_forever(tmp_path, depth):
    """``{"state_dict": <itself>}`` (or a longer loop) with --allow-pickle: one line, exit 2, in seconds."""
    import subprocess
    import sys

    torch = pytest.importorskip("torch")
    outer: dict = {"global_step": 1}
    inner = outer
    for _ in range(depth - 1):
        inner["state_dict"] = {}
        inner = inner["state_dict"]
    inner["state_dict"] = outer
    torch.save(outer, tmp_path / "loop.ckpt")
    command = [sys.executable, "-m", "sdrt.cli.build_engine", str(tmp_path / "loop.ckpt"), "-o"]
    command += [str(tmp_path / "out"), "--allow-pickle", "--config", "sd15", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "refers back to itself" in done.stderr and "loop.ckpt" in done.stderr
    _no_bundle(tmp_path / "out")


def test_openvino_on_cuda_is_refused(capsys, model_folders, tmp_path):
    """OpenVINO engines run on the CPU: --device cuda would be ignored."""
    out = tmp_path / "out"
    err = _run(capsys, [model_folders("sd1"), "-o", out, "--backend", "openvino", "--device", "cuda"])
    assert "--backend openvino --device cuda" in err and "run on the CPU" in err
    _no_bundle(out)
