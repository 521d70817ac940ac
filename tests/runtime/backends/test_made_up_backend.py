"""Adding a backend is one class and one registry row: a made-up ``ort-copy`` (ONNX Runtime on the CPU under
another name, with its own build and run name) is built by ``build-engine --backend ort-copy`` and generates
with ``from_pretrained(bundle, provider="ort-copy")``, with no other edit; its image matches diffusers'."""

from __future__ import annotations

import json

import pytest

from sdrt.runtime import backends
from sdrt.runtime.backends.ort import OrtCpu
from tests.parity import assert_parity, initial_latents

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


class OrtCopy(OrtCpu):
    """A made-up backend: the ORT CPU engine and graphs (the ``ort`` record) under a name of its own."""

    name = "ort-copy"
    title = "ONNX Runtime (CPU), copied"
    aliases = ("ort-again",)
    build_alias = None


def test_a_new_backend_needs_one_class_and_a_registry_row(model_folders, tiny, tmp_path, monkeypatch) -> None:
    from sdrt.cli.build_engine import main as build_engine
    from sdrt.runtime import DiffusionPipeline

    monkeypatch.setitem(backends.BACKENDS, "ort-copy", OrtCopy())  # the registry row
    out = tmp_path / "bundle"
    args = [str(model_folders("sd1")), "-o", str(out), "--backend", "ort-copy", "--no-validate", "-q"]
    args += ["--min-size", "32", "--max-size", "64", "--max-batch", "2"]
    assert build_engine([*args, "--components", "text_encoder", "unet", "vae_decoder"]) in (0, None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "ort-copy"
    assert manifest["components"]["unet"]["ort"]["file"] == "ort/unet.onnx"
    assert manifest["components"]["unet"]["precision"] == "fp32"  # the backend's default precision

    pipe = DiffusionPipeline.from_pretrained(out, provider="ort-again")
    assert pipe.provider == "ort-copy" and pipe.device == "cpu"
    assert str(pipe.unet.engine.path).endswith("ort/unet.onnx")
    reference = tiny.reference("sd1", "StableDiffusionPipeline")
    latents = initial_latents((1, 4, 8, 8), seed=3)
    prompt, steps = "a photo of a red cat", 3
    expected = reference(prompt, num_inference_steps=steps, latents=torch.from_numpy(latents)).images
    pipe.set_progress_bar_config(disable=True)
    assert_parity(pipe(prompt, num_inference_steps=steps, latents=latents).images, expected)
