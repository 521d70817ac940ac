"""``sdrt generate`` and ``sdrt inspect`` on a tiny bundle (``sdrt bench``: test_bench.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity

torch = pytest.importorskip("torch")


def test_generate_several_images_matches_diffusers_seed(tiny, tmp_path, capsys):
    import diffusers

    from sdrt.cli.sdrt import main

    bundle = tiny.bundle("sd1")
    capsys.readouterr()  # what build-engine printed, if it ran just now
    out = tmp_path / "out" / "cat.png"
    code = main(
        [
            "generate",
            str(bundle),
            "a photo of a cat",
            "-n",
            "blue",
            "--steps",
            "3",
            "--guidance",
            "6",
            "--scheduler",
            "euler_a",
            "--seed",
            "1234",
            "--size",
            "64x48",
            "--num-images",
            "2",
            "--provider",
            "cpu",
            "--no-progress",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    written = capsys.readouterr().out.split()
    names = ["cat-0.png", "cat-1.png", "cat-grid.png"]
    assert [p.rsplit("/", 1)[-1] for p in written] == names
    images = [Image.open(out.parent / n) for n in names[:2]]
    assert Image.open(out.parent / "cat-grid.png").size == (128, 48)
    ref = diffusers.StableDiffusionPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    ref.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(ref.scheduler.config)
    expected = ref(
        "a photo of a cat",
        negative_prompt="blue",
        num_inference_steps=3,
        guidance_scale=6.0,
        height=48,
        width=64,
        num_images_per_prompt=2,
        generator=torch.Generator().manual_seed(1234),
    ).images
    assert_parity(images, expected)


def test_generate_errors_are_one_line(tiny, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    code = main(
        ["generate", str(tiny.bundle("sd1")), "a cat", "--size", "60x64", "-o", str(tmp_path / "x.png")]
    )
    assert code == 2
    assert "divisible by 8" in capsys.readouterr().err
    code = main(["generate", str(tiny.bundle("sd1")), "a cat", "--scheduler", "nope", "--steps", "1"])
    assert code == 2
    assert "unknown scheduler 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", str(tiny.bundle("sd1")), "a cat", "--size", "big"])


def test_generate_unconditional(tiny, tmp_path):
    from sdrt.cli.sdrt import main

    out = tmp_path / "ddpm.png"
    assert (
        main(
            [
                "generate",
                str(tiny.bundle("uncond")),
                "--steps",
                "3",
                "--seed",
                "1",
                "--no-progress",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(out)).shape == (16, 16, 3)


def test_inspect(tiny, capsys):
    from sdrt.cli.sdrt import main

    bundle = tiny.bundle("sd1")
    capsys.readouterr()
    assert main(["inspect", str(bundle)]) == 0
    text = capsys.readouterr().out
    for expected in (
        "sd1 -> StableDiffusionPipeline",
        "unet",
        "vae_encoder",
        "latent_height 4..16",
        "height 32..128",
        "default 64x64, multiple of 16",
        "cpu       yes",
        "no TensorRT plans",
    ):
        assert expected in text, text
