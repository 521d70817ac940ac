"""Depth-to-image parity with diffusers' ``StableDiffusionDepth2ImgPipeline`` (same weights, same injected
noise or the same seed): with the DPT depth estimator, with a given depth map, two schedulers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity, injected_noise

torch = pytest.importorskip("torch")

PROMPT = "a photo of a red cat"
STEPS = 5
PIPELINE = "StableDiffusionDepth2ImgPipeline"


def init_image(height: int = 64, width: int = 64) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    pixels = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], axis=-1)
    return Image.fromarray((pixels * 255).astype(np.uint8))


def depth_map(count: int = 1, height: int = 20, width: int = 24, seed: int = 1) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    bumps = np.random.default_rng(seed).random((count, 1, 1)) * np.sin(4 * x + 3 * y)
    return (1.0 + x * y + bumps).astype(np.float32)


@pytest.fixture(scope="module")
def pipes(tiny):
    return tiny.reference("depth", PIPELINE), tiny.pipeline("depth", PIPELINE)


def with_scheduler(ref, pipe, name):
    import diffusers

    import sdrt.schedulers

    ref = diffusers.StableDiffusionDepth2ImgPipeline.from_pipe(ref)
    ref.scheduler = getattr(diffusers, name).from_config(ref.scheduler.config)
    pipe.scheduler = getattr(sdrt.schedulers, name).from_config(pipe.scheduler.config)
    return ref, pipe


@pytest.mark.parametrize("scheduler", ["PNDMScheduler", "DDIMScheduler"])
def test_with_the_depth_estimator(pipes, scheduler):
    ref, pipe = with_scheduler(*pipes, scheduler)
    assert pipe.depth_estimator is not None and pipe.unet.config.in_channels == 5
    kwargs = dict(image=init_image(64, 48), strength=0.7, num_inference_steps=STEPS, output_type="np")
    with injected_noise(31) as rng:
        expected = ref(PROMPT, negative_prompt="a dog", **kwargs).images
    actual = pipe(PROMPT, negative_prompt="a dog", generator=rng, **kwargs).images
    assert_parity(actual, expected)


@pytest.mark.parametrize("scheduler", ["PNDMScheduler", "EulerAncestralDiscreteScheduler"])
def test_with_a_given_depth_map_and_seeds(pipes, scheduler):
    ref, pipe = with_scheduler(*pipes, scheduler)
    depth = depth_map(2)
    kwargs = dict(image=init_image(), strength=0.8, num_inference_steps=STEPS, num_images_per_prompt=2)
    generators = [torch.Generator().manual_seed(s) for s in (7, 8)]
    expected = ref(PROMPT, depth_map=torch.from_numpy(depth), generator=generators, **kwargs).images
    actual = pipe(PROMPT, depth_map=depth, generator=[7, 8], **kwargs).images
    assert_parity(actual, expected)


def test_depth_conditions_the_image_and_callbacks_see_it(pipes):
    _, pipe = pipes
    seen = {}

    def callback(pipe, i, t, tensors):
        seen.update(tensors)
        return {}

    kwargs = dict(image=init_image(), num_inference_steps=3, output_type="np", generator=3)
    first = pipe(
        PROMPT,
        depth_map=depth_map(seed=1),
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "depth_mask"],
        **kwargs,
    ).images
    second = pipe(PROMPT, depth_map=depth_map(seed=2), return_dict=False, **kwargs)
    assert isinstance(second, tuple) and len(second) == 1  # diffusers' ImagePipelineOutput as a tuple
    assert np.abs(first - second[0]).max() > 1e-3
    assert seen["depth_mask"].shape == (2, 1, 8, 8)  # doubled for guidance
    assert seen["depth_mask"].min() == -1.0 and seen["depth_mask"].max() == 1.0


def test_image_arrays_reach_the_depth_estimator_as_their_pil_image(pipes):
    _, pipe = pipes
    image = init_image()
    common = dict(num_inference_steps=2, output_type="np", generator=4)
    from_pil = pipe(PROMPT, image=image, **common).images
    from_array = pipe(PROMPT, image=np.asarray(image) / 255.0, **common).images
    np.testing.assert_allclose(from_array, from_pil, atol=1e-5)


def test_a_pipeline_without_depth_estimator_takes_depth_maps(tiny, pipes):
    import sdrt.runtime

    ref, _ = pipes
    pipe = sdrt.runtime.StableDiffusionDepth2ImgPipeline.from_pretrained(
        tiny.bundle("depth"), provider="cpu", depth_estimator=None
    )
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(image=init_image(), strength=0.6, num_inference_steps=STEPS, output_type="np")
    with pytest.raises(sdrt.runtime.errors.InputError, match="no depth_estimator engine"):
        pipe(PROMPT, **kwargs)
    depth = depth_map()
    with injected_noise(32) as rng:
        expected = ref(PROMPT, depth_map=torch.from_numpy(depth), **kwargs).images
    assert_parity(pipe(PROMPT, depth_map=depth[0], generator=rng, **kwargs).images, expected)  # H x W too


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(depth_map=np.ones((1, 1, 8, 8), np.float32)), r"N x H x W .* got shape \(1, 1, 8, 8\)"),
        (dict(depth_map=np.ones((3, 8, 8), np.float32)), "3 maps for 1 images"),
        (dict(depth_map=np.ones((1, 8, 8), np.float32)), "one value everywhere"),
        (dict(depth_map=np.full((1, 8, 8), np.nan, np.float32)), "NaN or Inf"),
        (dict(depth_map="deep"), "array of numbers"),
        (dict(image=None), "`image` input cannot be undefined"),
        (dict(image=torch.zeros(1, 4, 8, 8)), "pass `depth_map` too"),
    ],
)
def test_bad_inputs(pipes, arguments, message):
    from sdrt.runtime.errors import InputError

    _, pipe = pipes
    kwargs = dict(image=init_image(), num_inference_steps=2, output_type="np") | arguments
    with pytest.raises(InputError, match=message):
        pipe(PROMPT, **kwargs)


def test_a_depth_bundle_runs_only_depth_to_image(tiny):
    import sdrt.runtime
    from sdrt.runtime.errors import BundleError

    bundle = tiny.bundle("depth")
    assert type(sdrt.runtime.DiffusionPipeline.from_pretrained(bundle, provider="cpu")).__name__ == PIPELINE
    with pytest.raises(BundleError, match="'depth' model, which StableDiffusionImg2ImgPipeline does not run"):
        sdrt.runtime.StableDiffusionImg2ImgPipeline.from_pretrained(bundle, provider="cpu")
