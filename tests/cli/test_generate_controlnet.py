"""``sdrt generate --control-image/--control-scale``: a ControlNet bundle from the CLI, against diffusers'
StableDiffusionControlNetPipeline on the same folders and seed; flags the bundle cannot serve are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.parity import assert_parity, controlnet_bundle
from tests.runtime.pipelines.test_controlnet import control_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a blue dog"


@pytest.fixture(scope="module")
def built(model_folders, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_controlnet")
    model = model_folders("sd1")
    bundle, nets = controlnet_bundle(root, model)
    pictures = [root / "edges.png", root / "flipped.png"]
    control_image().save(pictures[0])
    control_image(flip=True).save(pictures[1])
    return model, bundle, nets, pictures


def _generate(bundle: Path, out: Path, *flags: str) -> int:
    from sdrt.cli.sdrt import main

    argv = ["generate", str(bundle), PROMPT, "--steps", "4", "--seed", "99", "--provider", "cpu"]
    return main([*argv, "--no-progress", "-o", str(out), *flags])


def test_two_control_images_with_scales_match_diffusers(built, tmp_path):
    model, bundle, nets, pictures = built
    out = tmp_path / "cn.png"
    flags = ["--control-image", str(pictures[0]), "--control-image", str(pictures[1])]
    assert _generate(bundle, out, *flags, "--control-scale", "0.5", "--control-scale", "1.5") == 0
    ref = diffusers.StableDiffusionControlNetPipeline.from_pretrained(
        model, controlnet=[diffusers.ControlNetModel.from_pretrained(n) for n in nets], safety_checker=None
    )
    ref.set_progress_bar_config(disable=True)
    expected = ref(
        PROMPT,
        image=[Image.open(p).convert("RGB") for p in pictures],
        controlnet_conditioning_scale=[0.5, 1.5],
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(out)], expected)


def test_control_image_with_an_init_image_is_controlnet_img2img(built, tmp_path):
    model, bundle, nets, pictures = built
    out = tmp_path / "cn-i2i.png"
    flags = ["--control-image", str(pictures[0]), "--control-image", str(pictures[1])]
    assert _generate(bundle, out, *flags, "--image", str(pictures[1]), "--strength", "0.6") == 0
    ref = diffusers.StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
        model, controlnet=[diffusers.ControlNetModel.from_pretrained(n) for n in nets], safety_checker=None
    )
    ref.set_progress_bar_config(disable=True)
    expected = ref(
        PROMPT,
        image=Image.open(pictures[1]).convert("RGB"),
        control_image=[Image.open(p).convert("RGB") for p in pictures],
        controlnet_conditioning_scale=1.0,
        strength=0.6,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(out)], expected)


def test_control_image_with_image_and_mask_is_controlnet_inpainting(built, tmp_path):
    from tests.runtime.pipelines.test_controlnet import init_image, mask_image

    model, bundle, nets, pictures = built
    image, mask, out = tmp_path / "init.png", tmp_path / "mask.png", tmp_path / "cn-inpaint.png"
    init_image().save(image)
    mask_image().save(mask)
    flags = [
        "--control-image",
        str(pictures[0]),
        "--control-image",
        str(pictures[1]),
        "--control-scale",
        "0.5",
    ]
    assert _generate(bundle, out, *flags, "--image", str(image), "--mask", str(mask)) == 0
    ref = diffusers.StableDiffusionControlNetInpaintPipeline.from_pretrained(
        model, controlnet=[diffusers.ControlNetModel.from_pretrained(n) for n in nets], safety_checker=None
    )
    ref.set_progress_bar_config(disable=True)
    expected = ref(
        PROMPT,
        image=Image.open(image).convert("RGB"),
        mask_image=Image.open(mask).convert("L"),
        control_image=[Image.open(p).convert("RGB") for p in pictures],
        controlnet_conditioning_scale=0.5,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(out)], expected)


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (
            ["--control-image", "{0}"],
            "1 --control-image for the bundle's 2 ControlNets (controlnet, controlnet_edges)",
        ),
        (
            [
                "--control-image",
                "{0}",
                "--control-image",
                "{1}",
                "--control-scale",
                "1",
                "--control-scale",
                "1",
                "--control-scale",
                "1",
            ],
            "3 --control-scale for 2 ControlNets",
        ),
        (
            ["--control-image", "{0}", "--control-image", "{1}", "--mask", "{0}"],
            "--mask and --strength need --image",
        ),
        (["--control-image", "{0}", "--control-image", "{2}"], "no such file"),
    ],
)
def test_bad_control_flags_are_clear_errors(built, tmp_path, capsys, flags, said):
    pictures = [*built[3], tmp_path / "missing.png"]
    flags = [f.format(*pictures) for f in flags]
    assert _generate(built[1], tmp_path / "x.png", *flags) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err


def test_control_image_on_a_bundle_without_controlnet(tiny, built, tmp_path, capsys):
    assert _generate(tiny.bundle("sd1"), tmp_path / "x.png", "--control-image", str(built[3][0])) == 2
    err = capsys.readouterr().err
    assert "this bundle has no ControlNet" in err and "--controlnet" in err, err
