"""StableDiffusionDiffEditPipeline against diffusers' on the tiny SD 1.x folder (ORT CPU, fp32): the mask,
the DDIM inversion, the masked edit with two schedulers; and its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity import assert_parity

torch = pytest.importorskip("torch")

SOURCE, TARGET = "a bowl of fruits", "a bowl of pears"
STEPS, STRENGTH = 4, 0.75  # the edit and the inversion run 3 of 4 steps


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    rgb = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], axis=-1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def _pipes(tiny, scheduler: str = "DDIMScheduler"):
    import diffusers

    from sdrt.schedulers import get_scheduler_class

    sd = tiny.reference("sd1", "StableDiffusionPipeline")
    parts = {k: v for k, v in sd.components.items() if k != "image_encoder"}
    parts["scheduler"] = getattr(diffusers, scheduler).from_config(sd.scheduler.config)
    inverse = diffusers.DDIMInverseScheduler.from_config(sd.scheduler.config)
    ref = diffusers.StableDiffusionDiffEditPipeline(
        **parts, inverse_scheduler=inverse, requires_safety_checker=False
    )
    ref.set_progress_bar_config(disable=True)
    pipe = tiny.pipeline("sd1", "StableDiffusionDiffEditPipeline")
    pipe.scheduler = get_scheduler_class(scheduler).from_config(pipe.scheduler.config)
    pipe.inverse_scheduler = get_scheduler_class("DDIMInverseScheduler").from_config(pipe.scheduler.config)
    return ref, pipe


# diffusers' generate_mask fails without guidance (guidance_scale <= 1: it concatenates None embeddings), so
# only the guided mask is compared
@pytest.mark.parametrize(
    "options",
    [
        dict(num_maps_per_mask=1),
        dict(num_maps_per_mask=1, mask_encode_strength=0.75, mask_thresholding_ratio=1.5),
    ],
    ids=["defaults", "options"],
)
def test_mask_matches_diffusers(tiny, image, options):
    ref, pipe = _pipes(tiny)
    kwargs = dict(
        image=image, source_prompt=SOURCE, target_prompt=TARGET, num_inference_steps=STEPS, **options
    )
    expected = ref.generate_mask(generator=torch.Generator().manual_seed(3), **kwargs)
    actual = pipe.generate_mask(generator=3, **kwargs)
    assert actual.shape == expected.shape == (1, 8, 8)
    assert 0 < expected.sum() < expected.size, "a mask of one value would prove little"
    assert (actual != expected).mean() <= 1 / 64  # one latent pixel near the threshold may flip


def test_inversion_matches_diffusers(tiny, image):
    ref, pipe = _pipes(tiny)
    kwargs = dict(prompt=SOURCE, image=image, num_inference_steps=STEPS, inpaint_strength=STRENGTH)
    expected = ref.invert(generator=torch.Generator().manual_seed(4), **kwargs).latents.numpy()
    actual = pipe.invert(generator=4, **kwargs).latents
    assert actual.shape == expected.shape == (1, 3, 4, 8, 8)
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error < 1e-4, f"relative error {error:.3g}"


@pytest.mark.parametrize("scheduler", ["DDIMScheduler", "DPMSolverMultistepScheduler"])
def test_edit_matches_diffusers(tiny, image, scheduler):
    """The same mask and inverted latents into both pipelines' edit (the steps before are tested above)."""
    ref, pipe = _pipes(tiny, scheduler)
    mask = np.zeros((1, 8, 8), dtype=np.int64)
    mask[:, 2:6, 1:5] = 1
    inverted = ref.invert(
        prompt=SOURCE, image=image, num_inference_steps=STEPS, inpaint_strength=STRENGTH, generator=None
    ).latents
    kwargs = dict(prompt=TARGET, num_inference_steps=STEPS, inpaint_strength=STRENGTH, output_type="np")
    expected = ref(mask_image=mask, image_latents=inverted, **kwargs).images
    actual = pipe(mask_image=mask, image_latents=inverted.numpy(), **kwargs).images
    assert actual.shape == (1, 64, 64, 3)
    assert_parity(actual, expected, threshold=40.0)


def test_bad_inputs_are_refused(tiny, image):
    from sdrt.runtime.errors import InputError

    _, pipe = _pipes(tiny)
    with pytest.raises(InputError, match="mask_thresholding_ratio"):
        pipe.generate_mask(image=image, source_prompt=SOURCE, target_prompt=TARGET, mask_thresholding_ratio=0)
    latents = np.zeros((1, 3, 4, 8, 8), dtype=np.float32)
    kwargs = dict(prompt=TARGET, num_inference_steps=STEPS, inpaint_strength=STRENGTH)
    with pytest.raises(InputError, match=r"must have shape \(4, 4, 4\)"):  # a mask for a 32-pixel image
        pipe(mask_image=np.ones((1, 4, 4)), image_latents=latents, **kwargs)
    with pytest.raises(InputError, match="from 3 timesteps, but has batch size 1 with latent images from 2"):
        pipe(mask_image=np.ones((1, 8, 8)), image_latents=latents[:, :2], **kwargs)
    with pytest.raises(InputError, match="gradients"):
        pipe.invert(prompt=SOURCE, image=image, num_reg_steps=1)
