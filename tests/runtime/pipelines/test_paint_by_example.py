"""Paint-by-Example parity with diffusers' ``PaintByExamplePipeline`` on a tiny folder (its
``PaintByExampleImageEncoder`` exported as the ``image_encoder`` with its unconditional vector, a 9-channel UNet),
two schedulers; the example conditions the output; bad inputs are errors naming them;
``sdrt generate BUNDLE --image X --mask M --example-image E``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.image_models import make_paint_by_example, picture, with_scheduler
from tests.parity import assert_parity, build_bundle, injected_noise, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

OPTIONS = ["--min-size", "32", "--max-size", "64", "--max-batch", "2"]


def mask(height: int = 64, width: int = 48) -> Image.Image:
    pixels = np.zeros((height, width), np.uint8)
    pixels[height // 4 : 3 * height // 4, width // 6 : 5 * width // 6] = 255
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("paint_by_example")
    folder = make_paint_by_example(root / "model")
    return folder, build_bundle(folder, root / "bundle", OPTIONS)


def reference(folder):
    """diffusers' pipeline of the folder's parts (diffusers 0.42 cannot resolve the deprecated encoder's class
    from model_index.json, so the parts are loaded one by one)."""
    from diffusers.pipelines.deprecated.paint_by_example import PaintByExampleImageEncoder

    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return diffusers.PaintByExamplePipeline(
        vae=diffusers.AutoencoderKL.from_pretrained(folder / "vae"),
        image_encoder=PaintByExampleImageEncoder.from_pretrained(folder / "image_encoder"),
        unet=diffusers.UNet2DConditionModel.from_pretrained(folder / "unet"),
        scheduler=diffusers.DDIMScheduler.from_pretrained(folder / "scheduler"),
        safety_checker=None,
        feature_extractor=processor.from_pretrained(folder / "feature_extractor"),
    )


@pytest.fixture(scope="module")
def loaded(built):
    import sdrt.runtime

    folder, bundle = built
    return reference(folder), sdrt.runtime.DiffusionPipeline.from_pretrained(bundle, provider="cpu")


@pytest.fixture
def pipes(loaded):
    ref, pipe = (type(each).from_pipe(each) for each in loaded)
    for each in (ref, pipe):
        each.set_progress_bar_config(disable=True)
    return ref, pipe


def test_the_encoder_is_the_paint_by_example_component(loaded):
    from sdrt.runtime.components import PaintByExampleEncoder

    _, pipe = loaded
    assert (
        type(pipe).__name__ == "PaintByExamplePipeline" and type(pipe.image_encoder) is PaintByExampleEncoder
    )
    assert pipe.image_encoder.record.class_name == "PaintByExampleImageEncoder"
    assert set(pipe.image_encoder.record.outputs) == {"image_embeds", "uncond_embeds"}


@pytest.mark.parametrize("scheduler, count", [("DDIMScheduler", 2), ("EulerAncestralDiscreteScheduler", 1)])
def test_matches_diffusers(pipes, scheduler, count):
    ref, pipe = with_scheduler(*pipes, scheduler)
    kwargs = dict(num_inference_steps=4, output_type="np", num_images_per_prompt=count)
    inputs = lambda: dict(example_image=picture(40, 36, 1), image=picture(64, 48, 2), mask_image=mask())  # noqa: E731
    with injected_noise(5) as rng:
        expected = ref(**inputs(), **kwargs).images
    actual = pipe(**inputs(), generator=rng, **kwargs).images
    assert np.asarray(actual).shape == (count, 64, 48, 3)
    assert_parity(actual, expected)


def test_the_example_conditions_the_output(pipes):
    _, pipe = pipes
    kwargs = dict(image=picture(64, 48, 2), mask_image=mask(), num_inference_steps=3, output_type="np")
    first, other = (pipe(example_image=picture(32, 32, s), generator=4, **kwargs).images for s in (0, 1))
    assert psnr(first, other) < 40


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(example_image="not a picture"), "cannot read the example_image"),
        (dict(example_image=7), "`example_image` must be a PIL image"),
        (dict(example_image=[picture(32, 32), picture(32, 32)]), "one example per image"),
        (dict(image=picture(60, 48), mask_image=mask(60, 48)), "multiple of 8|multiples of 8|divisible by 8"),
        (dict(mask_image=mask(32, 32)), "same size"),
        (dict(negative_prompt="blurry"), "`negative_prompt`"),
    ],
)
def test_bad_inputs_are_errors_naming_them(pipes, arguments, message):
    from sdrt.runtime.errors import SdrtError

    _, pipe = pipes
    inputs = dict(example_image=picture(32, 32), image=picture(64, 48), mask_image=mask()) | arguments
    with pytest.raises(SdrtError, match=message):
        pipe(**inputs, num_inference_steps=2)


def test_sdrt_generate_paints_the_example_in(built, tmp_path):
    from sdrt.cli.sdrt import main

    _, bundle = built
    for name, image in (("in", picture(64, 48)), ("mask", mask()), ("example", picture(32, 32, 3))):
        image.save(tmp_path / f"{name}.png")
    flags = ["--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png")]
    common = [str(bundle), *flags, "--steps", "2", "--no-progress", "-o", str(tmp_path / "out.png")]
    assert main(["generate", *common, "--example-image", str(tmp_path / "example.png")]) == 0
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (48, 64)
    assert main(["generate", *common]) == 2  # no --example-image
