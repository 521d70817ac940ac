"""``sdrt generate`` on SDXL bundles: ``--image`` / ``--mask`` (image-to-image, inpainting) and ``--refiner``
(the base + refiner ensemble), against diffusers' pipelines on the same folders and seed; the refiner flags'
errors."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from tests.cli.test_generate_images import PROMPT, _generate, _pictures
from tests.parity import assert_parity, build_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")


def reference(tiny, kind: str, name: str):
    pipe = getattr(diffusers, name).from_pipe(tiny.reference(kind, name))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed: int = 99):
    return torch.Generator().manual_seed(seed)


# suite time: the SDXL ControlNet img2img/inpaint CLI tests route --image and --mask in the default run
@pytest.mark.slow
def test_image_and_mask_reach_sdxl_img2img_and_inpainting(tiny, tmp_path):
    image, mask = _pictures(tmp_path)
    out = tmp_path / "out.png"
    assert _generate(tiny.bundle("sdxl"), out, "--image", str(image), "--strength", "0.7") == 0
    picture = Image.open(image).convert("RGB")
    expected = reference(tiny, "sdxl", "StableDiffusionXLImg2ImgPipeline")(
        PROMPT, image=picture, strength=0.7, num_inference_steps=4, generator=seeded()
    ).images
    assert_parity([Image.open(out)], expected)
    assert _generate(tiny.bundle("sdxl-inpaint"), out, "--image", str(image), "--mask", str(mask)) == 0
    expected = reference(tiny, "sdxl-inpaint", "StableDiffusionXLInpaintPipeline")(
        PROMPT,
        image=picture,
        mask_image=Image.open(mask).convert("L"),
        num_inference_steps=4,
        height=64,
        width=64,
        generator=seeded(),
    ).images
    assert_parity([Image.open(out)], expected)


# suite time: the ensemble is compared with diffusers in tests/runtime/pipelines/test_sdxl_img2img_inpaint.py
@pytest.mark.slow
def test_refiner_ensemble_matches_diffusers(tiny, tmp_path):
    out = tmp_path / "out.png"
    flags = ("--refiner", str(tiny.bundle("sdxl-refiner")), "--refiner-start", "0.7", "--size", "64x64")
    assert _generate(tiny.bundle("sdxl"), out, *flags) == 0
    latents = reference(tiny, "sdxl", "StableDiffusionXLPipeline")(
        PROMPT,
        num_inference_steps=4,
        denoising_end=0.7,
        output_type="latent",
        height=64,
        width=64,
        generator=seeded(),
    ).images
    expected = reference(tiny, "sdxl-refiner", "StableDiffusionXLImg2ImgPipeline")(
        PROMPT, image=latents, num_inference_steps=4, denoising_start=0.7, generator=seeded()
    ).images
    assert_parity([Image.open(out)], expected)


@pytest.fixture(scope="module")
def wide_refiner(model_folders, tmp_path_factory):
    """A refiner folder whose VAE halves the image (4 pixels per latent, not 8): its VAE decoder alone."""
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("wide") / "refiner"
    shutil.copytree(model_folders("sdxl-refiner"), folder)
    config = json.loads((folder / "vae" / "config.json").read_text())
    for key in ("down_block_types", "up_block_types", "block_out_channels"):
        config[key] = config[key][:3]
    torch.manual_seed(0)
    AutoencoderKL.from_config(config).save_pretrained(folder / "vae")
    return build_bundle(folder, folder.parent / "bundle", ["--max-batch", "1", "--components", "vae_decoder"])


def test_refiner_flags_errors(tiny, tmp_path, capsys, wide_refiner):
    out = tmp_path / "x.png"
    refiner = str(tiny.bundle("sdxl-refiner"))
    cases = [
        (tiny.bundle("sdxl"), ("--refiner", str(wide_refiner)), "pass a refiner of the base's latent width"),
        (tiny.bundle("sdxl"), ("--refiner", refiner, "--refiner-start", "1.5"), "strictly between 0 and 1"),
        (tiny.bundle("sdxl"), ("--refiner", str(tiny.bundle("sd1"))), "cannot refine"),
        (tiny.bundle("sd1"), ("--refiner", refiner), "does not stop early for a refiner"),
        (tiny.bundle("sdxl-refiner"), (), "pass --image (the picture to start from)"),
    ]
    capsys.readouterr()
    for bundle, flags, said in cases:
        assert _generate(bundle, out, *flags) == 2, flags
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, (flags, err)
    assert not out.exists()
