"""Img2img and inpainting parity with diffusers (same weights, same injected noise or the same seed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity, initial_latents, injected_noise

torch = pytest.importorskip("torch")

PROMPT = "a photo of a blue dog"
STEPS = 5


def init_image(size: int = 64) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    pixels = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], axis=-1)
    return Image.fromarray((pixels * 255).astype(np.uint8))


def mask_image(size: int = 64) -> Image.Image:
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 8 : size // 2] = 255
    return Image.fromarray(mask)


@pytest.mark.parametrize("strength", [0.5, 0.8])
def test_img2img_strengths(tiny, strength):
    ref = tiny.reference("sd1", "StableDiffusionImg2ImgPipeline")
    pipe = tiny.pipeline("sd1", "StableDiffusionImg2ImgPipeline")
    kwargs = dict(image=init_image(), strength=strength, num_inference_steps=STEPS, output_type="np")
    with injected_noise(21) as rng:
        expected = ref(PROMPT, **kwargs).images
    actual = pipe(PROMPT, generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_img2img_seeded_with_ancestral_scheduler_and_two_images(tiny):
    import diffusers

    from sdrt.schedulers import EulerAncestralDiscreteScheduler

    ref = diffusers.StableDiffusionImg2ImgPipeline.from_pipe(
        tiny.reference("sd1", "StableDiffusionImg2ImgPipeline")
    )
    ref.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(ref.scheduler.config)
    pipe = tiny.pipeline("sd1", "StableDiffusionImg2ImgPipeline")
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    kwargs = dict(image=init_image(), strength=0.7, num_inference_steps=STEPS, num_images_per_prompt=2)
    expected = ref(PROMPT, generator=[torch.Generator().manual_seed(s) for s in (5, 6)], **kwargs).images
    actual = pipe(PROMPT, generator=[5, 6], **kwargs).images
    assert_parity(actual, expected)


def test_inpaint_nine_channel_unet(tiny):
    ref = tiny.reference("inpaint", "StableDiffusionInpaintPipeline")
    pipe = tiny.pipeline("inpaint", "StableDiffusionInpaintPipeline")
    assert pipe.unet.config.in_channels == 9
    latents = initial_latents((1, 4, 8, 8), seed=12)
    kwargs = dict(image=init_image(), mask_image=mask_image(), num_inference_steps=STEPS, output_type="np")
    with injected_noise(22) as rng:
        expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_inpaint_nine_channel_seeded_strength(tiny):
    ref = tiny.reference("inpaint", "StableDiffusionInpaintPipeline")
    pipe = tiny.pipeline("inpaint", "StableDiffusionInpaintPipeline")
    kwargs = dict(image=init_image(), mask_image=mask_image(), strength=0.75, num_inference_steps=STEPS)
    expected = ref(PROMPT, generator=torch.Generator().manual_seed(77), **kwargs).images
    actual = pipe(PROMPT, generator=77, **kwargs).images
    assert_parity(actual, expected)


def test_inpaint_with_plain_unet_keeps_unmasked_latents(tiny):
    import diffusers

    ref = diffusers.StableDiffusionInpaintPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    pipe = tiny.pipeline("sd1", "StableDiffusionInpaintPipeline")
    assert pipe.unet.config.in_channels == 4
    kwargs = dict(
        image=init_image(), mask_image=mask_image(), strength=0.8, num_inference_steps=STEPS, output_type="np"
    )
    with injected_noise(23) as rng:
        expected = ref(PROMPT, **kwargs).images
    actual = pipe(PROMPT, generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_image_inputs_as_arrays_and_paths(tiny, tmp_path):
    pipe = tiny.pipeline("inpaint", "StableDiffusionInpaintPipeline")
    image, mask = init_image(), mask_image()
    image.save(tmp_path / "image.png")
    mask.save(tmp_path / "mask.png")
    latents = initial_latents((1, 4, 8, 8), seed=13)
    common = dict(num_inference_steps=2, latents=latents, output_type="np", generator=0)
    from_pil = pipe(PROMPT, image=image, mask_image=mask, **common).images
    from_paths = pipe(
        PROMPT, image=str(tmp_path / "image.png"), mask_image=tmp_path / "mask.png", **common
    ).images
    arrays = dict(image=np.asarray(image) / 255.0, mask_image=np.asarray(mask)[..., None] / 255.0)
    from_arrays = pipe(PROMPT, **arrays, **common).images
    np.testing.assert_allclose(from_paths, from_pil, atol=1e-6)
    np.testing.assert_allclose(from_arrays, from_pil, atol=1e-5)
