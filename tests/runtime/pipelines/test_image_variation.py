"""Image variation parity with diffusers' ``StableDiffusionImageVariationPipeline`` on a tiny folder (same
weights, same injected noise), two schedulers; the image conditions the output; a bad image is an error naming
it; ``sdrt generate BUNDLE --image X`` without a prompt."""

from __future__ import annotations

import numpy as np
import pytest

from tests.image_models import make_image_variation, picture, with_scheduler
from tests.parity import assert_parity, build_bundle, injected_noise, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("onnxruntime")

OPTIONS = ["--min-size", "32", "--max-size", "64", "--max-batch", "2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the model folder, its bundle)."""
    root = tmp_path_factory.mktemp("image_variation")
    folder = make_image_variation(root / "model")
    components = ["--components", "image_encoder", "unet", "vae_decoder"]
    return folder, build_bundle(folder, root / "bundle", [*OPTIONS, *components])


@pytest.fixture(scope="module")
def loaded(built):
    import sdrt.runtime

    folder, bundle = built
    ref = diffusers.StableDiffusionImageVariationPipeline.from_pretrained(folder)
    return ref, sdrt.runtime.DiffusionPipeline.from_pretrained(bundle, provider="cpu")


@pytest.fixture
def pipes(loaded):
    """Each test's own copies (schedulers of their own) over the module's models and engines."""
    ref, pipe = (type(each).from_pipe(each) for each in loaded)
    for each in (ref, pipe):
        each.set_progress_bar_config(disable=True)
    return ref, pipe


@pytest.mark.parametrize("scheduler", ["DDIMScheduler", "EulerDiscreteScheduler"])
def test_matches_diffusers(pipes, scheduler):
    ref, pipe = with_scheduler(*pipes, scheduler)
    assert type(pipe).__name__ == "StableDiffusionImageVariationPipeline"
    kwargs = dict(num_inference_steps=4, output_type="np", height=64, width=48, num_images_per_prompt=2)
    with injected_noise(3) as rng:
        expected = ref(picture(48, 40), **kwargs).images
    actual = pipe(picture(48, 40), generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_the_image_conditions_the_output_and_guidance_one_runs_it_alone(pipes):
    ref, pipe = pipes
    kwargs = dict(num_inference_steps=3, output_type="np", generator=5)
    first, other = (pipe(picture(40, 40, seed), **kwargs).images for seed in (0, 1))
    assert psnr(first, other) < 40
    with injected_noise(9) as rng:
        expected = ref(picture(40, 40), num_inference_steps=3, output_type="np", guidance_scale=1.0).images
    actual = pipe(picture(40, 40), num_inference_steps=3, output_type="np", guidance_scale=1.0, generator=rng)
    assert_parity(actual.images, expected)


@pytest.mark.parametrize(
    "image, error, message",
    [
        (12, "InputTypeError", "`image` must be a PIL image"),
        (np.zeros((4, 4, 4, 4, 4)), "InputError", "`image`"),
        ("/nonexistent/picture.png", "InputError", "cannot read the image"),
        (None, "InputError", "`image` is required"),
        ("tensor", "InputError", "takes N x 3 x 32 x 32"),  # pixel_values of another size
    ],
)
def test_a_bad_image_is_an_error_naming_it(pipes, image, error, message):
    from sdrt.runtime import errors

    _, pipe = pipes
    image = torch.zeros(1, 3, 16, 16) if isinstance(image, str) and image == "tensor" else image
    with pytest.raises(getattr(errors, error), match=message):
        pipe(image, num_inference_steps=2)


def test_sdrt_generate_takes_an_image_and_no_prompt(built, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    _, bundle = built
    picture(40, 40).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    common = [str(bundle), "--image", str(tmp_path / "in.png"), "--steps", "2", "--no-progress"]
    assert main(["generate", *common, "--num-images", "2", "--size", "32x32", "-o", str(out)]) == 0
    assert (tmp_path / "out-1.png").is_file() and (tmp_path / "out-grid.png").is_file()
    assert main(["generate", *common, "--mask", str(tmp_path / "in.png"), "-o", str(out)]) == 2
    assert main(["generate", str(bundle), "--steps", "2", "-o", str(out)]) == 2  # no --image
    assert main(["generate", str(bundle), "a prompt", *common[1:], "-o", str(out)]) == 2  # it reads no prompt
    capsys.readouterr()
    assert main(["inspect", str(bundle)]) == 0
    listing = capsys.readouterr().out
    assert (
        "image-variation -> StableDiffusionImageVariationPipeline" in listing and "image_encoder" in listing
    )
