"""StableDiffusionControlNetPipeline against diffusers' (same weights, same injected noise or seed): one and
two ControlNets, two schedulers, guidance windows, guess mode; the control image conditions, scale 0 is the
plain UNet's image."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity, controlnet_bundle, injected_noise, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 5


def control_image(size: int = 64, flip: bool = False) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    edges = (np.abs(np.sin(9 * x) * np.cos(7 * y)) > 0.5).astype(np.float64)
    pixels = np.stack([edges, x, 1.0 - y], axis=-1)
    image = Image.fromarray((pixels * 255).astype(np.uint8))
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image


@pytest.fixture(scope="module")
def setup(model_folders, tmp_path_factory):
    model = model_folders("sd1")
    bundle, nets = controlnet_bundle(tmp_path_factory.mktemp("controlnet"), model)
    return model, bundle, nets


def sdrt_pipe(setup, count: int = 2, scheduler: str | None = None):
    from sdrt import schedulers
    from sdrt.runtime import StableDiffusionControlNetPipeline

    pipe = StableDiffusionControlNetPipeline.from_pretrained(setup[1], provider="cpu")
    if count == 1:
        pipe = StableDiffusionControlNetPipeline(**{**pipe.components, "controlnet": pipe.controlnet.nets[0]})
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference(setup, count: int = 2, scheduler: str | None = None):
    model, _, nets = setup
    controlnets = [diffusers.ControlNetModel.from_pretrained(n) for n in nets[:count]]
    pipe = diffusers.StableDiffusionControlNetPipeline.from_pretrained(
        model, controlnet=controlnets[0] if count == 1 else controlnets, safety_checker=None
    )
    if scheduler:
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize(
    ("scheduler", "kwargs"),
    [
        (None, {}),  # the bundle's PNDM
        ("DPMSolverMultistepScheduler", {"controlnet_conditioning_scale": 0.6}),
        (None, {"control_guidance_start": 0.2, "control_guidance_end": 0.8}),
        (None, {"guess_mode": True, "guidance_scale": 5.0}),
    ],
)
def test_one_controlnet_matches_diffusers(setup, scheduler, kwargs):
    args = dict(image=control_image(), num_inference_steps=STEPS, output_type="np", **kwargs)
    with injected_noise(7) as rng:
        expected = reference(setup, 1, scheduler)(PROMPT, **args).images
    actual = sdrt_pipe(setup, 1, scheduler)(PROMPT, generator=rng, **args).images
    assert_parity(actual, expected)


def test_two_controlnets_with_scales_and_windows_seeded(setup):
    args = dict(
        image=[control_image(), control_image(flip=True)],
        controlnet_conditioning_scale=[0.7, 1.3],
        control_guidance_start=[0.0, 0.4],
        control_guidance_end=[0.6, 1.0],
        num_inference_steps=STEPS,
        num_images_per_prompt=2,
    )
    ref = reference(setup, 2, "EulerAncestralDiscreteScheduler")
    expected = ref(PROMPT, generator=torch.Generator().manual_seed(3), **args).images
    actual = sdrt_pipe(setup, 2, "EulerAncestralDiscreteScheduler")(PROMPT, generator=3, **args).images
    assert_parity(actual, expected)


def test_two_controlnets_in_guess_mode_with_a_batch_of_control_images(setup):
    pairs = [[control_image(), control_image(flip=True)], [control_image(flip=True), control_image()]]
    args = dict(
        prompt=[PROMPT, "a blue dog"],
        image=pairs,  # one [first ControlNet's, second's] pair per prompt, as diffusers takes them
        guess_mode=True,
        controlnet_conditioning_scale=[1.2, 0.4],
        num_inference_steps=STEPS,
        output_type="np",
    )
    with injected_noise(11) as rng:
        expected = reference(setup, 2)(**args).images
    actual = sdrt_pipe(setup, 2)(generator=rng, **args).images
    assert_parity(actual, expected)


def test_control_image_of_another_size_is_resized_as_diffusers_does(setup):
    args = dict(image=control_image(80), height=64, width=48, num_inference_steps=STEPS, output_type="np")
    with injected_noise(8) as rng:
        expected = reference(setup, 1)(PROMPT, **args).images
    actual = sdrt_pipe(setup, 1)(PROMPT, generator=rng, **args).images
    assert actual.shape == (1, 64, 48, 3)
    assert_parity(actual, expected)


def test_the_control_image_conditions_and_scale_zero_is_the_plain_unet(setup):
    pipe = sdrt_pipe(setup, 1)
    args = dict(num_inference_steps=STEPS, output_type="np", generator=5)
    first = pipe(PROMPT, image=control_image(), **args).images
    second = pipe(PROMPT, image=control_image(flip=True), **args).images
    assert psnr(first, second) < 35.0  # parity is >= 60 dB: the control image moves the picture

    unconditioned = pipe(PROMPT, image=control_image(), controlnet_conditioning_scale=0.0, **args).images
    plain = diffusers.StableDiffusionPipeline.from_pretrained(setup[0], safety_checker=None)
    plain.set_progress_bar_config(disable=True)
    kwargs = dict(height=64, width=64, num_inference_steps=STEPS, output_type="np")
    expected = plain(PROMPT, generator=torch.Generator().manual_seed(5), **kwargs).images
    assert_parity(unconditioned, expected)
    assert psnr(first, expected) < 35.0


def test_a_controlnet_bundle_runs_the_plain_pipeline_too(setup):
    from sdrt.runtime import DiffusionPipeline, StableDiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(setup[1], provider="cpu")
    assert type(pipe).__name__ == "StableDiffusionControlNetPipeline" and len(pipe.controlnet) == 2
    plain = StableDiffusionPipeline.from_pipe(pipe)
    plain.set_progress_bar_config(disable=True)
    reference = diffusers.StableDiffusionPipeline.from_pretrained(setup[0], safety_checker=None)
    reference.set_progress_bar_config(disable=True)
    kwargs = dict(height=64, width=64, num_inference_steps=STEPS, output_type="np")
    expected = reference(PROMPT, generator=torch.Generator().manual_seed(6), **kwargs).images
    assert_parity(plain(PROMPT, generator=6, **kwargs).images, expected)


def init_image(size: int = 64) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    return Image.fromarray((np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], axis=-1) * 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("count", "kwargs"), [(1, {"strength": 0.7}), (2, {"control_guidance_end": [0.5, 1.0]})]
)
def test_img2img_matches_diffusers(setup, count, kwargs):
    from sdrt.runtime import StableDiffusionControlNetImg2ImgPipeline

    controls = [control_image(), control_image(flip=True)][:count]
    args = dict(
        image=init_image(),
        control_image=controls[0] if count == 1 else controls,
        num_inference_steps=STEPS,
        output_type="np",
        **kwargs,
    )
    ref = diffusers.StableDiffusionControlNetImg2ImgPipeline.from_pipe(reference(setup, count))
    pipe = StableDiffusionControlNetImg2ImgPipeline.from_pipe(sdrt_pipe(setup, count))
    with injected_noise(9) as rng:
        expected = ref(PROMPT, **args).images
    actual = pipe(PROMPT, generator=rng, **args).images
    assert_parity(actual, expected)


def mask_image(size: int = 64) -> Image.Image:
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 8 : size // 2] = 255
    return Image.fromarray(mask)


@pytest.mark.parametrize(
    ("count", "kwargs"), [(1, {}), (2, {"strength": 0.75, "control_guidance_start": 0.3})]
)
def test_inpaint_matches_diffusers(setup, count, kwargs):
    from sdrt.runtime import StableDiffusionControlNetInpaintPipeline

    controls = [control_image(), control_image(flip=True)][:count]
    args = dict(
        image=init_image(),
        mask_image=mask_image(),
        control_image=controls[0] if count == 1 else controls,
        num_inference_steps=STEPS,
        output_type="np",
        **kwargs,
    )
    ref = diffusers.StableDiffusionControlNetInpaintPipeline.from_pipe(reference(setup, count))
    pipe = StableDiffusionControlNetInpaintPipeline.from_pipe(sdrt_pipe(setup, count))
    with injected_noise(10) as rng:
        expected = ref(PROMPT, **args).images
    actual = pipe(PROMPT, generator=rng, **args).images
    assert_parity(actual, expected)


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"image": None}, "`image` (the control image) is required"),
        ({"image": "one"}, "pass `image` as a list of 2 control images"),
        ({"image": ["one"]}, "1 control images for 2 ControlNets"),
        ({"controlnet_conditioning_scale": [1.0, 1.0, 1.0]}, "has 3 values for 2 ControlNets"),
        ({"controlnet_conditioning_scale": "high"}, "must be a number or a list of numbers"),
        ({"control_guidance_start": 0.6, "control_guidance_end": 0.4}, "0 <= start < end <= 1"),
        ({"control_guidance_end": [1.0, 1.5]}, "0 <= start < end <= 1"),
        (
            {"prompt": ["a cat", "a dog", "a red dog"], "image": [[control_image()] * 2] * 2},
            "2 control images for 3 prompts",
        ),
        ({"height": 72}, "multiples of"),
    ],
)
def test_bad_control_arguments_are_clear_errors(setup, kwargs, said):
    from sdrt.runtime.errors import InputError

    args = {
        "prompt": PROMPT,
        "image": [control_image(), control_image(flip=True)],
        "num_inference_steps": 2,
        **kwargs,
    }
    with pytest.raises(InputError, match=re.escape(said)):
        sdrt_pipe(setup, 2)(**args)


def test_the_controlnet_pipeline_needs_a_bundle_with_controlnets(tiny):
    from sdrt.runtime import StableDiffusionControlNetPipeline
    from sdrt.runtime.errors import BundleError

    with pytest.raises(BundleError, match="has no ControlNet; build one with build-engine .* --controlnet"):
        StableDiffusionControlNetPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu")
