"""``sdrt generate --image [--depth-map]`` on a depth-to-image bundle, against diffusers'
``StableDiffusionDepth2ImgPipeline`` on the same model folder and seed; the depth flags' errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity
from tests.runtime.pipelines.test_depth2img import depth_map, init_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"


def generate(bundle: Path, out: Path, *flags: str) -> int:
    from sdrt.cli.sdrt import main

    argv = ["generate", str(bundle), PROMPT, "--steps", "4", "--seed", "42", "--provider", "cpu"]
    return main([*argv, "--no-progress", "-o", str(out), *flags])


def expected(tiny, image: Path, **kwargs) -> list:
    ref = tiny.reference("depth", "StableDiffusionDepth2ImgPipeline")
    generator = torch.Generator().manual_seed(42)
    picture = Image.open(image).convert("RGB")
    return ref(PROMPT, image=picture, num_inference_steps=4, generator=generator, **kwargs).images


def test_depth_to_image_with_the_bundles_estimator(tiny, tmp_path):
    image, out = tmp_path / "cat.png", tmp_path / "out.png"
    init_image(64, 48).save(image)
    assert generate(tiny.bundle("depth"), out, "--image", str(image), "--strength", "0.6") == 0
    assert_parity([Image.open(out)], expected(tiny, image, strength=0.6))


def test_depth_map_as_npy_and_as_image(tiny, tmp_path):
    image, out = tmp_path / "cat.png", tmp_path / "out.png"
    init_image().save(image)
    depth = depth_map()[0]
    np.save(tmp_path / "depth.npy", depth)
    assert (
        generate(tiny.bundle("depth"), out, "--image", str(image), "--depth-map", str(tmp_path / "depth.npy"))
        == 0
    )
    assert_parity([Image.open(out)], expected(tiny, image, depth_map=torch.from_numpy(depth[None])))
    gray = np.round(255 * (depth - depth.min()) / np.ptp(depth)).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "depth.png")
    assert (
        generate(tiny.bundle("depth"), out, "--image", str(image), "--depth-map", str(tmp_path / "depth.png"))
        == 0
    )
    as_read = torch.from_numpy(gray[None].astype(np.float32))
    assert_parity([Image.open(out)], expected(tiny, image, depth_map=as_read))


def test_pipeline_choice_for_depth_flags(tmp_path):
    import sdrt.runtime as rt
    from sdrt.cli.generate import ImageInputs, pipeline_class
    from sdrt.runtime.errors import InputError

    image, depth = tmp_path / "cat.png", tmp_path / "depth.npy"
    assert pipeline_class("depth", ImageInputs(image)) is rt.StableDiffusionDepth2ImgPipeline
    assert pipeline_class("depth", ImageInputs(image, depth_map=depth)) is rt.StableDiffusionDepth2ImgPipeline
    for model_type in ("sd1", "sd2", "inpaint", "sdxl", "uncond"):
        with pytest.raises(InputError, match="--depth-map"):
            pipeline_class(model_type, ImageInputs(image, depth_map=depth))
    with pytest.raises(InputError, match="pass --image"):
        pipeline_class("depth", ImageInputs(depth_map=depth))


def test_depth_flags_that_cannot_apply_are_one_line_errors(tiny, tmp_path, capsys):
    image, out = tmp_path / "cat.png", tmp_path / "x.png"
    init_image().save(image)
    np.save(tmp_path / "cube.npy", np.ones((1, 1, 8, 8), np.float32))
    (tmp_path / "bad.npy").write_text("not an array")
    bundle = tiny.bundle("depth")
    cases = [
        ((), "depth-to-image model: pass --image"),
        (("--image", str(image), "--mask", str(image)), "does not inpaint"),
        (("--image", str(image), "--size", "64x64"), "the image's size"),
        (("--image", str(image), "--depth-map", str(tmp_path / "none.npy")), "no such file"),
        (("--image", str(image), "--depth-map", str(tmp_path / "bad.npy")), "not a NumPy .npy array"),
        (("--image", str(image), "--depth-map", str(tmp_path / "cube.npy")), "got shape (1, 1, 8, 8)"),
    ]
    capsys.readouterr()
    for flags, said in cases:
        assert generate(bundle, out, *flags) == 2, flags
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and err.count("\n") == 1, (flags, err)
    assert not out.exists()
