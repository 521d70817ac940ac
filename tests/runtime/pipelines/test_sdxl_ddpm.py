"""SDXL and unconditional DDPM parity with diffusers, and DiffusionPipeline's dispatch."""

from __future__ import annotations

import pytest

from tests.parity import assert_parity, initial_latents, injected_noise

torch = pytest.importorskip("torch")

STEPS = 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"negative_prompt": "blue square", "num_images_per_prompt": 2},
        {"original_size": (96, 128), "crops_coords_top_left": (8, 16), "guidance_rescale": 0.5},
    ],
    ids=["zeros-for-empty-negative", "negative-two-images", "size-crop-conditioning"],
)
def test_sdxl(tiny, kwargs):
    ref = tiny.reference("sdxl", "StableDiffusionXLPipeline")
    pipe = tiny.pipeline("sdxl", "StableDiffusionXLPipeline")
    batch = kwargs.get("num_images_per_prompt", 1)
    latents = initial_latents((batch, 4, 8, 8), seed=31)
    with injected_noise(32) as rng:
        expected = ref(
            "a red circle", num_inference_steps=STEPS, latents=torch.from_numpy(latents), **kwargs
        ).images
    actual = pipe("a red circle", num_inference_steps=STEPS, latents=latents, generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_sdxl_seeded_with_prompt_2(tiny):
    ref = tiny.reference("sdxl", "StableDiffusionXLPipeline")
    pipe = tiny.pipeline("sdxl", "StableDiffusionXLPipeline")
    kwargs = dict(prompt_2="a blue square", num_inference_steps=STEPS, guidance_scale=6.0)
    expected = ref("a red circle", generator=torch.Generator().manual_seed(99), **kwargs).images
    actual = pipe("a red circle", generator=99, **kwargs).images
    assert_parity(actual, expected)


def test_ddpm_seeded(tiny):
    ref = tiny.reference("uncond", "DDPMPipeline")
    pipe = tiny.pipeline("uncond", "DDPMPipeline")
    expected = ref(batch_size=2, num_inference_steps=6, generator=torch.Generator().manual_seed(5)).images
    actual = pipe(batch_size=2, num_inference_steps=6, generator=5).images
    assert_parity(actual, expected)


def test_diffusion_pipeline_dispatches_on_the_manifest(tiny):
    from sdrt.runtime import (
        DDPMPipeline,
        DiffusionPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    expected = {
        "sd1": StableDiffusionPipeline,
        "sdxl": StableDiffusionXLPipeline,
        "inpaint": StableDiffusionInpaintPipeline,
        "uncond": DDPMPipeline,
    }
    for kind, cls in expected.items():
        assert type(DiffusionPipeline.from_pretrained(tiny.bundle(kind), provider="cpu")) is cls
