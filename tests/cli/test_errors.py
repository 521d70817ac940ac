"""Failing invocations of both console scripts, as a user types them: each one gives exit status 2 and one
line on stderr, ``PROG: error: ...`` naming what was wrong, and never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest


def run(*argv: str) -> subprocess.CompletedProcess:
    executable = shutil.which(argv[0])
    assert executable, f"{argv[0]} is not installed as a console script (pip install -e .)"
    return subprocess.run([executable, *argv[1:]], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str, *expected: str) -> None:
    err = result.stderr
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, err[-2000:]
    for text in expected:
        assert text in errors[0], (text, errors[0])


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    checkpoint = root / "model.safetensors"
    checkpoint.write_bytes(b"\0" * 16)
    no_index = root / "no_index"
    no_index.mkdir()
    (no_index / "unet").mkdir()
    other_pipeline = root / "other_pipeline"
    other_pipeline.mkdir()
    (other_pipeline / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    a_file = root / "a_file"
    a_file.write_text("not a folder")
    return {
        "checkpoint": checkpoint,
        "no_index": no_index,
        "other": other_pipeline,
        "file": a_file,
        "root": root,
    }


BUILD_ERRORS = [
    (lambda f, m: [str(f["root"] / "missing"), "-o", str(f["root"] / "out")], ["does not exist"]),
    (lambda f, m: [str(f["checkpoint"]), "-o", str(f["root"] / "out")], ["damaged or truncated"]),
    (lambda f, m: [str(f["no_index"]), "-o", str(f["root"] / "out")], ["no model_index.json"]),
    (lambda f, m: [str(f["other"]), "-o", str(f["root"] / "out")], ["'FluxPipeline' is not supported"]),
    (lambda f, m: [str(m), "-o", str(f["root"] / "out"), "--height", "100"], ["--height 100", "multiple of 8"]),
    (lambda f, m: [str(m), "-o", str(f["root"] / "out"), "--min-size", "64", "--max-size", "32"], ["swap them"]),
    (lambda f, m: [str(m), "-o", str(f["file"] / "out")], ["cannot create the output's parent folder"]),
    (lambda f, m: [str(m), "-o", str(f["root"] / "out"), "--components", "text_encoder_2"], ["unknown component"]),
    (lambda f, m: [str(m), "-o", str(f["root"] / "out"), "--opset", "13"], ["opset 13 is below 17"]),
    (lambda f, m: [str(m), "-o", str(f["root"] / "out"), "--backend", "tensorrt", "--trt-module", "tensorrt"],
     ["'tensorrt' is not installed", "pip install"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expected"), BUILD_ERRORS)
def test_build_engine_errors(argv, expected, folders, model_folders) -> None:
    result = run("build-engine", *argv(folders, model_folders("sd1")), "-q")
    assert_one_line_error(result, "build-engine", *expected)
    assert not (folders["root"] / "out").exists()


@pytest.fixture(scope="module")
def bundles(tiny, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny SD1 bundle, and damaged copies of it."""
    good = tiny.bundle("sd1")
    root = tmp_path_factory.mktemp("bad_bundles")
    newer, truncated, garbage, flipped, scheduler, widened = (
        shutil.copytree(good, root / n)
        for n in ("newer", "truncated", "garbage", "flipped", "scheduler", "widened")
    )
    (scheduler / "scheduler" / "scheduler_config.json").write_text('{"_class_name": "FancyScheduler"}')
    manifest = json.loads((good / "manifest.json").read_text())
    (newer / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    unet = truncated / manifest["components"]["unet"]["ort"]["file"]
    unet.write_bytes(unet.read_bytes()[:1000])
    (garbage / "manifest.json").write_text("{ not json")
    decoder = flipped / manifest["components"]["vae_decoder"]["ort"]["file"]
    data = bytearray(decoder.read_bytes())
    data[len(data) // 2] ^= 1  # one bit: the size stays, the sha256 does not
    decoder.write_bytes(bytes(data))
    wide = {**manifest, "shapes": {**manifest["shapes"], "height": [8, 4096]}}  # by hand, beyond the engines
    (widened / "manifest.json").write_text(json.dumps(wide))
    (widened / "manifest.sha256").unlink()  # as a bundle from before the seal: the edit goes unseen by it
    from PIL import Image

    Image.new("RGB", (1, 1)).save(root / "one-pixel.png")
    return {
        "widened": widened,
        "good": good,
        "newer": newer,
        "truncated": truncated,
        "garbage": garbage,
        "flipped": flipped,
        "scheduler": scheduler,
        "root": root,
    }


SDRT_ERRORS = [
    (lambda b: ["generate", str(b["root"] / "missing"), "a cat"], ["does not exist", "build-engine"]),
    (lambda b: ["generate", str(b["root"]), "a cat"], ["not an engine bundle", "build-engine"]),
    (lambda b: ["generate", str(b["newer"]), "a cat"], ["format_version 99", "upgrade sdrt"]),
    (lambda b: ["inspect", str(b["garbage"])], ["cannot read", "--force"]),
    (lambda b: ["generate", str(b["truncated"]), "a cat", "--steps", "1"], ["cannot load", "--force"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--size", "100x100"], ["divisible by 8"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--size", "1024"], ["outside the sizes", "--max-size"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--scheduler", "bogus"], ["unknown scheduler 'bogus'"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--provider", "cuda"], ["provider 'cuda' is not available"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--num-images", "0"], ["--num-images must be at least 1"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--steps", "1", "-o", str(b["good"] / "manifest.json" / "x.png")],
     ["cannot write there", "choose another -o"]),  # checked before the run
    (lambda b: ["bench", str(b["good"]), "--runs", "0"], ["--runs >= 1"]),
    (lambda b: ["generate", str(b["scheduler"]), "a cat"], ["'FancyScheduler'", "Rebuild the bundle"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--steps", "0"], ["num_inference_steps", "at least 1"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--guidance", "nan"], ["guidance_scale", "finite"]),
    (lambda b: ["inspect", str(b["flipped"]), "--verify"], ["vae_decoder: ort/vae_decoder.onnx does not match its sha256"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "--image", str(b["root"] / "one-pixel.png")],
     ["the image is 1x1 pixels", "pass a larger image"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "-o", str(b["root"] / ("a" * 300 + ".png"))],
     ["cannot write there", "File name too long", "choose another -o"]),
    (lambda b: ["generate", str(b["good"]), "a cat", "-o", "/proc/x.png"], ["-o /proc/x.png: cannot write there"]),
    (lambda b: ["bench", str(b["good"]), "--json", str(b["root"] / "missing" / "b.json")],
     ["--json", "cannot write there", "choose another --json"]),
    (lambda b: ["generate", str(b["widened"]), "a cat"],
     ["shapes.height 8..4096 is not inside what the unet engine was built for", "--max-size"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expected"), SDRT_ERRORS)
def test_sdrt_errors(argv, expected, bundles) -> None:
    words = argv(bundles)
    result = run("sdrt", *words, *(["--no-progress"] if words[0] == "generate" else []))
    assert_one_line_error(result, f"sdrt {words[0]}", *expected)


def test_a_closed_stdout_ends_quietly(bundles) -> None:
    """``sdrt inspect B | head -1``: the reader gone, the command stops as Unix tools do (status 141, no
    traceback)."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before the first line
    try:
        result = subprocess.run(
            [shutil.which("sdrt"), "inspect", str(bundles["good"])],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141 and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_a_bug_keeps_its_traceback(monkeypatch, capsys) -> None:
    """Errors that are not sdrt's own (a bug) are not hidden behind one line."""
    from sdrt.cli import run as run_command

    def bug() -> int:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_command("sdrt generate", bug)


def test_verify_passes_on_a_sound_bundle(bundles) -> None:
    result = run("sdrt", "inspect", str(bundles["good"]), "--verify")
    assert result.returncode == 0, result.stderr
    assert "files match their sizes and sha256" in result.stdout
