"""Bad input gives a clear error (what was wrong, how to fix it), never a crash deep in an engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.parity import initial_latents


@pytest.fixture
def sd1(tiny):
    return tiny.pipeline("sd1", "StableDiffusionPipeline")


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((60, 64), "divisible by 8"),
        ((56, 64), "multiples of 16"),
        ((256, 64), r"height 32\.\.128, width 32\.\.128"),
        ((64, 16), r"width=16 is outside"),
    ],
)
def test_size_checks_name_the_range(sd1, size, message):
    with pytest.raises(ValueError, match=message):
        sd1("a cat", height=size[0], width=size[1], num_inference_steps=1)


def test_generator_list_of_wrong_length(sd1):
    with pytest.raises(ValueError, match="list of generators of length 3.*batch size of 2"):
        sd1("a cat", num_images_per_prompt=2, num_inference_steps=1, generator=[1, 2, 3])


def test_negative_prompt_list_length_mismatch(sd1):
    with pytest.raises(ValueError, match="`negative_prompt` has 1 entries, but `prompt` has 2"):
        sd1(["a cat", "a dog"], negative_prompt=["blue"], num_inference_steps=1)


def test_bad_generator_and_prompt_types(sd1):
    with pytest.raises(TypeError, match="generator must be an int seed"):
        sd1("a cat", num_inference_steps=1, generator="1234")
    with pytest.raises(TypeError, match="`prompt` has to be a string or a list of strings"):
        sd1(42, num_inference_steps=1)


def test_wrong_latents_shape(sd1):
    with pytest.raises(ValueError, match=r"`latents` have shape \(1, 4, 4, 4\), expected \(1, 4, 8, 8\)"):
        sd1("a cat", num_inference_steps=1, latents=initial_latents((1, 4, 4, 4)))


def test_unreadable_init_image_and_mask(tiny, tmp_path):
    img2img = tiny.pipeline("sd1", "StableDiffusionImg2ImgPipeline")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a PNG")
    with pytest.raises(ValueError, match="cannot read the image .*no such file"):
        img2img("a cat", image=tmp_path / "missing.png", num_inference_steps=2)
    with pytest.raises(ValueError, match="cannot read the image .*notes.png.*not an image"):
        img2img("a cat", image=str(not_an_image), num_inference_steps=2)
    with pytest.raises(ValueError, match="`image` must be a PIL image"):
        img2img("a cat", image=42, num_inference_steps=2)
    inpaint = tiny.pipeline("inpaint", "StableDiffusionInpaintPipeline")
    image = np.zeros((64, 64, 3))
    with pytest.raises(ValueError, match="cannot read the mask_image .*notes.png"):
        inpaint("a cat", image=image, mask_image=not_an_image, num_inference_steps=2)
    with pytest.raises(ValueError, match="strength should in"):
        img2img("a cat", image=image, strength=1.5)


def test_provider_not_available_names_the_extra(tiny):
    from sdrt.runtime import StableDiffusionPipeline

    with pytest.raises(ImportError, match=r"sdrt\[cuda\]"):
        StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="cuda")
    with pytest.raises(ValueError, match="no TensorRT plans.*--backend tensorrt"):
        StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="tensorrt")
    with pytest.raises(ValueError, match="unknown provider"):
        StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="gpu")


def test_onnxruntime_missing_names_the_cpu_extra(tiny):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["onnxruntime"] = None  # not importable, and find_spec says not installed
        from sdrt.runtime import DiffusionPipeline
        try:
            DiffusionPipeline.from_pretrained({str(tiny.bundle("sd1"))!r}, provider="auto")
        except ImportError as error:
            print("ERROR", error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "ERROR" in result.stdout, result.stderr
    assert "sdrt[cpu]" in result.stdout


def _copy_bundle(tiny, tmp_path, kind: str = "sd1"):
    return shutil.copytree(tiny.bundle(kind), tmp_path / "bundle")


def test_bundle_missing_a_component(tiny, tmp_path):
    from sdrt.runtime import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    # the sd2 bundle was built without a VAE encoder: fine for text-to-image, not for img2img
    StableDiffusionPipeline.from_pretrained(tiny.bundle("sd2"), provider="cpu")
    with pytest.raises(ValueError, match="no vae_encoder engine, which StableDiffusionImg2ImgPipeline needs"):
        StableDiffusionImg2ImgPipeline.from_pretrained(tiny.bundle("sd2"), provider="cpu")
    bundle = _copy_bundle(tiny, tmp_path)
    for folder in ("onnx", "ort"):
        (bundle / folder / "unet.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="unet engine listed in manifest.json.*missing"):
        StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")


def test_bundle_of_a_newer_format_or_no_bundle(tiny, tmp_path):
    from sdrt.runtime import DiffusionPipeline

    bundle = _copy_bundle(tiny, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format_version 99.*upgrade sdrt"):
        DiffusionPipeline.from_pretrained(bundle, provider="cpu")
    with pytest.raises((ValueError, FileNotFoundError), match="build-engine"):
        DiffusionPipeline.from_pretrained(tmp_path / "nowhere", provider="cpu")


def test_pipeline_class_that_does_not_fit_the_bundle(tiny):
    from sdrt.runtime import DDPMPipeline, StableDiffusionXLPipeline

    with pytest.raises(ValueError, match="holds a 'sd1' model, which StableDiffusionXLPipeline does not run"):
        StableDiffusionXLPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu")
    with pytest.raises(ValueError, match="DiffusionPipeline.from_pretrained"):
        DDPMPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu")
