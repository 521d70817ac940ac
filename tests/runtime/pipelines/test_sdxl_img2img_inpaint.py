"""SDXL image-to-image and inpainting against diffusers' pipelines of the same names (same weights, same
injected noise or seed), two schedulers each: a base, a refiner (second text encoder only, aesthetic score),
a 9-channel inpainting UNet; the base + refiner ensemble (``denoising_end`` / ``denoising_start``); bad input."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.runtime.errors import InputError
from tests.parity import assert_parity, injected_noise
from tests.runtime.pipelines.test_img2img_inpaint import init_image, mask_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 5
SCHEDULERS = ["EulerDiscreteScheduler", "DPMSolverMultistepScheduler"]


def pair(tiny, kind: str, name: str, scheduler: str):
    """(sdrt's pipeline ``name`` on the kind's bundle, diffusers' on its folder), both with ``scheduler``."""
    from sdrt import schedulers

    pipe = tiny.pipeline(kind, name)
    pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    ref = getattr(diffusers, name).from_pipe(tiny.reference(kind, name))
    ref.scheduler = getattr(diffusers, scheduler).from_config(ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    return pipe, ref


def compare(pipe, ref, seed: int, **kwargs) -> None:
    kwargs = {"num_inference_steps": STEPS, "output_type": "np", **kwargs}
    with injected_noise(seed) as rng:
        expected = ref(PROMPT, **kwargs).images
    assert_parity(pipe(PROMPT, generator=rng, **kwargs).images, expected)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_img2img_base(tiny, scheduler):
    pipe, ref = pair(tiny, "sdxl", "StableDiffusionXLImg2ImgPipeline", scheduler)
    compare(pipe, ref, 31, image=init_image(), strength=0.6, num_images_per_prompt=2)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_img2img_refiner_with_aesthetic_scores(tiny, scheduler):
    pipe, ref = pair(tiny, "sdxl-refiner", "StableDiffusionXLImg2ImgPipeline", scheduler)
    assert pipe.text_encoder is None and pipe.requires_aesthetics_score
    scores = dict(aesthetic_score=7.5, negative_aesthetic_score=1.0, negative_prompt="blue")
    compare(pipe, ref, 32, image=init_image(), strength=0.7, num_images_per_prompt=2, **scores)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_inpaint_nine_channel_unet(tiny, scheduler):
    pipe, ref = pair(tiny, "sdxl-inpaint", "StableDiffusionXLInpaintPipeline", scheduler)
    assert pipe.unet.config.in_channels == 9
    compare(pipe, ref, 33, image=init_image(), mask_image=mask_image(), strength=0.8, height=64, width=64)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_inpaint_plain_unet_refiner_from_denoising_start(tiny, scheduler):
    pipe, ref = pair(tiny, "sdxl-refiner", "StableDiffusionXLInpaintPipeline", scheduler)
    assert pipe.unet.config.in_channels == 4
    images = dict(image=init_image(), mask_image=mask_image(), height=64, width=64)
    compare(pipe, ref, 34, denoising_start=0.4, **images)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_base_and_refiner_ensemble(tiny, scheduler):
    """diffusers' documented ensemble: the base stops at denoising_end with latents, the refiner starts there."""
    base, base_ref = pair(tiny, "sdxl", "StableDiffusionXLPipeline", scheduler)
    refiner, refiner_ref = pair(tiny, "sdxl-refiner", "StableDiffusionXLImg2ImgPipeline", scheduler)
    common = dict(num_inference_steps=6, height=64, width=64)
    expected_latents = base_ref(
        PROMPT, denoising_end=0.7, output_type="latent", generator=torch.Generator().manual_seed(5), **common
    ).images
    expected = refiner_ref(
        PROMPT,
        image=expected_latents,
        num_inference_steps=6,
        denoising_start=0.7,
        output_type="np",
        generator=torch.Generator().manual_seed(6),
    ).images
    latents = base(PROMPT, denoising_end=0.7, output_type="latent", generator=5, **common).images
    np.testing.assert_allclose(latents, expected_latents.numpy(), atol=1e-4)
    actual = refiner(
        PROMPT, image=latents, num_inference_steps=6, denoising_start=0.7, output_type="np", generator=6
    ).images
    assert_parity(actual, expected)


def test_auto_pipeline_picks_the_folder_task(tiny):
    from sdrt.runtime import (
        DiffusionPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
    )

    for kind, cls in (
        ("sdxl-refiner", StableDiffusionXLImg2ImgPipeline),
        ("sdxl-inpaint", StableDiffusionXLInpaintPipeline),
        ("sdxl", StableDiffusionXLPipeline),
    ):
        pipe = DiffusionPipeline.from_pretrained(tiny.bundle(kind), provider="cpu")
        assert type(pipe) is cls and pipe.bundle.model_type == kind
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(tiny.bundle("sdxl-refiner"), provider="cpu")
    assert pipe.text_encoder is None and pipe.tokenizer is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(strength=0.0), r"strength should in \(0.0, 1.0\]"),
        (dict(strength=1.5), "strength"),
        (dict(denoising_start=-0.1), "denoising_start"),
        (dict(denoising_start=1.2), "denoising_start"),
        (dict(denoising_end=2.0), "denoising_end"),
        (dict(denoising_start=0.8, denoising_end=0.5), "cannot be larger than or equal to `denoising_end`"),
    ],
)
def test_bad_fractions_are_clear_errors(tiny, kwargs, message):
    pipe = tiny.pipeline("sdxl-refiner", "StableDiffusionXLImg2ImgPipeline")
    with pytest.raises(InputError, match=message):
        pipe(PROMPT, image=init_image(), num_inference_steps=2, **kwargs)
    inpaint = tiny.pipeline("sdxl-inpaint", "StableDiffusionXLInpaintPipeline")
    with pytest.raises(InputError, match=message):
        inpaint(PROMPT, image=init_image(), mask_image=mask_image(), num_inference_steps=2, **kwargs)


def test_time_ids_of_another_kind_are_refused(tiny):
    from sdrt.runtime import StableDiffusionXLImg2ImgPipeline

    pipe = tiny.pipeline("sdxl-refiner", "StableDiffusionXLImg2ImgPipeline")
    wrong = StableDiffusionXLImg2ImgPipeline(**pipe.components, requires_aesthetics_score=False)
    with pytest.raises(InputError, match="the UNet takes 5 time ids .*requires_aesthetics_score=True"):
        wrong(PROMPT, image=init_image(), num_inference_steps=2)
