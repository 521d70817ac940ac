"""StableDiffusionXLAdapterPipeline against diffusers' (same weights, same injected noise or seed): a tiny
T2IAdapter made for the tiny SDXL UNet, two schedulers, ``adapter_conditioning_factor`` (the features for the
first steps only); scale 0 is the plain SDXL pipeline's image. About 50 s on 2 shared cores (an SDXL bundle of its
own): under ``-m slow``; the SD module covers the shared code in the default run."""

from __future__ import annotations

import pytest

from tests.parity import assert_parity, injected_noise, psnr
from tests.runtime.pipelines.test_t2i_adapter import build, make_adapter, sketch

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.slow

PROMPT = "a photo of a red cat"
STEPS = 4
COMPONENTS = ("--components", "text_encoder", "text_encoder_2", "unet", "vae_decoder", "adapter")


@pytest.fixture(scope="module")
def setup(model_folders, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl_adapter")
    model = model_folders("sdxl")
    adapter = make_adapter(root / "adapter", seed=30)
    bundle = root / "bundle"
    assert build(model, bundle, [str(adapter)], extra=COMPONENTS) in (0, None)
    return model, bundle, adapter


def sdrt_pipe(setup, scheduler: str | None = None):
    from sdrt import schedulers
    from sdrt.runtime import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(setup[1], provider="cpu")
    assert type(pipe).__name__ == "StableDiffusionXLAdapterPipeline"
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference(setup, scheduler: str | None = None):
    model, _, folder = setup
    adapter = diffusers.T2IAdapter.from_pretrained(folder)
    pipe = diffusers.StableDiffusionXLAdapterPipeline.from_pretrained(model, adapter=adapter)
    if scheduler:
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize(
    ("scheduler", "kwargs"),
    [
        (None, {"adapter_conditioning_factor": 0.5}),  # the bundle's Euler; the features for 2 of 4 steps
        ("DPMSolverMultistepScheduler", {"adapter_conditioning_scale": 0.7, "height": 64, "width": 48}),
    ],
)
def test_sdxl_adapter_matches_diffusers(setup, scheduler, kwargs):
    args = dict(image=sketch(), num_inference_steps=STEPS, output_type="np", **kwargs)
    with injected_noise(9) as rng:
        expected = reference(setup, scheduler)(PROMPT, **args).images
    actual = sdrt_pipe(setup, scheduler)(PROMPT, generator=rng, **args).images
    assert actual.shape == expected.shape
    assert_parity(actual, expected)


def test_sdxl_adapter_conditions_and_scale_zero_is_the_plain_pipeline(setup):
    pipe = sdrt_pipe(setup)
    args = dict(num_inference_steps=STEPS, output_type="np", generator=4)
    first = pipe(PROMPT, image=sketch(), **args).images
    unconditioned = pipe(PROMPT, image=sketch(), adapter_conditioning_scale=0.0, **args).images
    plain = diffusers.StableDiffusionXLPipeline.from_pretrained(setup[0])
    plain.set_progress_bar_config(disable=True)
    kwargs = dict(height=64, width=64, num_inference_steps=STEPS, output_type="np")
    expected = plain(PROMPT, generator=torch.Generator().manual_seed(4), **kwargs).images
    assert_parity(unconditioned, expected)
    assert psnr(first, expected) < 35.0
