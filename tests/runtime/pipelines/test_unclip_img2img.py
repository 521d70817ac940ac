"""Stable unCLIP image-to-image parity with diffusers' ``StableUnCLIPImg2ImgPipeline`` on a tiny folder (a
normaliser with its own mean and std, the squared-cosine noising schedule, a projection class embedding), two
schedulers, with and without a prompt and noise level; the image conditions the output; bad inputs are errors
naming them; ``sdrt generate BUNDLE [PROMPT] --image X``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.image_models import make_unclip_img2img, picture, with_scheduler
from tests.parity import assert_parity, build_bundle, injected_noise, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("onnxruntime")

OPTIONS = ["--min-size", "32", "--max-size", "64", "--max-batch", "2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("unclip_img2img")
    folder = make_unclip_img2img(root / "model")
    components = ["--components", "text_encoder", "image_encoder", "unet", "vae_decoder"]
    return folder, build_bundle(folder, root / "bundle", [*OPTIONS, *components])


@pytest.fixture(scope="module")
def loaded(built):
    import sdrt.runtime

    folder, bundle = built
    ref = diffusers.StableUnCLIPImg2ImgPipeline.from_pretrained(folder)
    return ref, sdrt.runtime.DiffusionPipeline.from_pretrained(bundle, provider="cpu")


@pytest.fixture
def pipes(loaded):
    ref, pipe = (type(each).from_pipe(each) for each in loaded)
    for each in (ref, pipe):
        each.set_progress_bar_config(disable=True)
    return ref, pipe


@pytest.mark.parametrize(
    "scheduler, prompt, noise_level",
    [("DDIMScheduler", None, 0), ("DPMSolverMultistepScheduler", "a red circle", 250)],
)
def test_matches_diffusers(pipes, scheduler, prompt, noise_level):
    ref, pipe = with_scheduler(*pipes, scheduler)
    assert type(pipe).__name__ == "StableUnCLIPImg2ImgPipeline"
    kwargs = dict(prompt=prompt, noise_level=noise_level, num_inference_steps=4, output_type="np")
    kwargs |= dict(height=48, width=64, num_images_per_prompt=2)
    with injected_noise(7) as rng:
        expected = ref(picture(48, 40), **kwargs).images
    actual = pipe(picture(48, 40), generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_image_embeds_and_the_image_condition_the_output(pipes):
    ref, pipe = pipes
    kwargs = dict(num_inference_steps=3, output_type="np", noise_level=100)
    first, other = (pipe(picture(40, 40, seed), generator=3, **kwargs).images for seed in (0, 1))
    assert psnr(first, other) < 40
    embeds = np.random.default_rng(2).standard_normal((1, 32)).astype(np.float32)
    with injected_noise(11) as rng:
        expected = ref(image_embeds=torch.from_numpy(embeds), prompt="a cat", **kwargs).images
    assert_parity(pipe(image_embeds=embeds, prompt="a cat", generator=rng, **kwargs).images, expected)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(image=3.5), "`image` must be a PIL image"),
        (dict(image=np.zeros((2, 2))), "`image`"),
        (dict(image=None), "pass either `image` or `image_embeds`"),
        (dict(image=picture(32, 32), noise_level=1000), "`noise_level` must be an int between 0 and 999"),
        (dict(image_embeds=np.zeros((1, 1, 32), np.float32)), "`image_embeds` must be images x D"),
    ],
)
def test_bad_inputs_are_errors_naming_them(pipes, arguments, message):
    from sdrt.runtime.errors import SdrtError

    _, pipe = pipes
    with pytest.raises(SdrtError, match=message):
        pipe(num_inference_steps=2, **arguments)


def test_sdrt_generate_takes_an_image_and_an_optional_prompt(built, tmp_path):
    from sdrt.cli.sdrt import main

    _, bundle = built
    picture(40, 40).save(tmp_path / "in.png")
    common = [str(bundle), "--image", str(tmp_path / "in.png"), "--steps", "2", "--no-progress"]
    assert main(["generate", *common, "-o", str(tmp_path / "a.png")]) == 0
    assert (
        main(
            ["generate", *common[:1], "a cat", *common[1:], "--size", "32x32", "-o", str(tmp_path / "b.png")]
        )
        == 0
    )
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file()
    assert main(["generate", *common, "--strength", "0.5", "-o", str(tmp_path / "c.png")]) == 2
