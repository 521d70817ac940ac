"""``sdrt generate --image/--mask/--strength``: image-to-image and inpainting from the CLI, against
diffusers' pipelines on the same model folder and seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.parity import assert_parity
from tests.runtime.pipelines.test_img2img_inpaint import init_image, mask_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a blue dog"


def _pictures(folder: Path) -> tuple[Path, Path]:
    image, mask = folder / "dog.png", folder / "mask.png"
    init_image().save(image)
    mask_image().save(mask)
    return image, mask


def _generate(bundle: Path, out: Path, *flags: str) -> int:
    from sdrt.cli.sdrt import main

    argv = ["generate", str(bundle), PROMPT, "--steps", "4", "--seed", "99", "--provider", "cpu"]
    return main([*argv, "--no-progress", "-o", str(out), *flags])


def test_image_to_image_matches_diffusers(tiny, tmp_path):
    image, _ = _pictures(tmp_path)
    out = tmp_path / "i2i.png"
    assert _generate(tiny.bundle("sd1"), out, "--image", str(image), "--strength", "0.7") == 0
    ref = diffusers.StableDiffusionImg2ImgPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    expected = ref(
        PROMPT,
        image=Image.open(image).convert("RGB"),
        strength=0.7,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(out)], expected)


@pytest.mark.parametrize("kind", ["inpaint", "sd1"])  # the 9-channel inpainting UNet, and a plain one
def test_inpainting_matches_diffusers(tiny, tmp_path, kind):
    image, mask = _pictures(tmp_path)
    out = tmp_path / "inpaint.png"
    flags = ("--image", str(image), "--mask", str(mask), "--strength", "0.9", "--size", "64x64")
    assert _generate(tiny.bundle(kind), out, *flags) == 0
    ref = diffusers.StableDiffusionInpaintPipeline.from_pipe(
        tiny.reference(
            kind, "StableDiffusionInpaintPipeline" if kind == "inpaint" else "StableDiffusionPipeline"
        )
    )
    expected = ref(
        PROMPT,
        image=Image.open(image).convert("RGB"),
        mask_image=Image.open(mask).convert("L"),
        strength=0.9,
        height=64,
        width=64,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(out)], expected)


def test_image_flags_that_cannot_apply_are_one_line_errors(tiny, tmp_path, capsys):
    image, mask = _pictures(tmp_path)
    out = tmp_path / "x.png"
    cases = [
        (tiny.bundle("sd1"), ("--mask", str(mask)), "--mask need --image"),
        (tiny.bundle("sd1"), ("--strength", "0.5"), "--strength need --image"),
        (tiny.bundle("sd1"), ("--image", str(tmp_path / "none.png")), "--image"),
        (tiny.bundle("sd1"), ("--image", str(tmp_path / "dog.png"), "--size", "64x64"), "the image's size"),
        (tiny.bundle("sd1"), ("--image", str(image), "--strength", "1.5"), "strength"),
        (tiny.bundle("inpaint"), (), "pass --image (the picture) and --mask"),
        (tiny.bundle("inpaint"), ("--image", str(image)), "pass --image (the picture) and --mask"),
        (tiny.bundle("uncond"), ("--image", str(image)), "unconditional models"),
        (tiny.bundle("sdxl"), ("--refiner-start", "0.5"), "--refiner-start needs --refiner"),
    ]
    (tmp_path / "bad.png").write_text("not a picture")
    cases.append((tiny.bundle("sd1"), ("--image", str(tmp_path / "bad.png")), "not an image Pillow can read"))
    capsys.readouterr()
    for bundle, flags, said in cases:
        assert _generate(bundle, out, *flags) == 2, flags
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, (flags, err)
    assert not out.exists()
