"""StableDiffusionPipeline parity with diffusers on the tiny SD models (ORT CPU, fp32)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity import PARITY_DB, assert_parity, initial_latents, injected_noise, psnr

torch = pytest.importorskip("torch")

SCHEDULERS = [
    "DDIMScheduler",
    "DDPMScheduler",
    "PNDMScheduler",
    "LCMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
]
PROMPT = "a photo of a red cat"
STEPS = 4


def _swap(ref, pipe, name: str) -> None:
    import diffusers

    from sdrt.schedulers import get_scheduler_class

    ref.scheduler = getattr(diffusers, name).from_config(ref.scheduler.config)
    pipe.scheduler = get_scheduler_class(name).from_config(pipe.scheduler.config)


@pytest.fixture
def sd1(tiny):
    ref = tiny.reference("sd1", "StableDiffusionPipeline")
    original = ref.scheduler
    yield ref, tiny.pipeline("sd1", "StableDiffusionPipeline")
    ref.scheduler = original


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_each_scheduler_matches_diffusers(sd1, scheduler):
    ref, pipe = sd1
    _swap(ref, pipe, scheduler)
    latents = initial_latents((1, 4, 8, 8))
    with injected_noise(7) as rng:
        expected = ref(
            PROMPT, num_inference_steps=STEPS, latents=torch.from_numpy(latents), output_type="np"
        ).images
    actual = pipe(PROMPT, num_inference_steps=STEPS, latents=latents, generator=rng, output_type="np").images
    assert_parity(actual, expected)


@pytest.mark.parametrize("negative_prompt", [None, "blue square"])
def test_negative_prompt(sd1, negative_prompt):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=1)
    expected = ref(
        PROMPT, negative_prompt=negative_prompt, num_inference_steps=STEPS, latents=torch.from_numpy(latents)
    ).images
    actual = pipe(PROMPT, negative_prompt=negative_prompt, num_inference_steps=STEPS, latents=latents).images
    assert_parity(actual, expected)


def test_negative_prompt_changes_the_image_beyond_the_threshold(sd1):
    _, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=1)
    plain = pipe(PROMPT, num_inference_steps=STEPS, latents=latents, output_type="np").images
    negative = pipe(
        PROMPT, negative_prompt="blue square", num_inference_steps=STEPS, latents=latents, output_type="np"
    )
    assert psnr(plain, negative.images) < PARITY_DB  # a negative-prompt mix-up would fail the parity tests


def test_batch_of_prompts_times_images(sd1):
    ref, pipe = sd1
    _swap(ref, pipe, "EulerAncestralDiscreteScheduler")
    prompts = ["a photo of a red cat", "a blue dog on a square"]
    negatives = ["square", "circle"]
    latents = initial_latents((4, 4, 8, 8), seed=2)
    kwargs = dict(
        negative_prompt=negatives, num_images_per_prompt=2, num_inference_steps=STEPS, output_type="np"
    )
    with injected_noise(11) as rng:
        expected = ref(prompts, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(prompts, latents=latents, generator=rng, **kwargs).images
    assert actual.shape == (4, 64, 64, 3)
    assert_parity(actual, expected)


def test_seeded_image_matches_diffusers_manual_seed(sd1):
    ref, pipe = sd1
    _swap(ref, pipe, "EulerAncestralDiscreteScheduler")
    expected = ref(
        PROMPT, num_inference_steps=STEPS, generator=torch.Generator("cpu").manual_seed(1234)
    ).images
    actual = pipe(PROMPT, num_inference_steps=STEPS, generator=1234).images
    assert_parity(actual, expected)


def test_list_of_seeds_one_per_image(sd1):
    ref, pipe = sd1
    seeds = [3, 4]
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    expected = ref(PROMPT, num_images_per_prompt=2, num_inference_steps=STEPS, generator=generators).images
    actual = pipe(PROMPT, num_images_per_prompt=2, num_inference_steps=STEPS, generator=seeds).images
    assert_parity(actual, expected)


def test_no_guidance_at_scale_one(sd1):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=3)
    calls = []
    unet = pipe.unet

    class CountingUNet:
        config = unet.config

        def __call__(self, sample, *args, **kwargs):
            calls.append(sample.shape[0])
            return unet(sample, *args, **kwargs)

    pipe.unet = CountingUNet()
    expected = ref(
        PROMPT, guidance_scale=1.0, num_inference_steps=STEPS, latents=torch.from_numpy(latents)
    ).images
    actual = pipe(PROMPT, guidance_scale=1.0, num_inference_steps=STEPS, latents=latents).images
    assert calls and set(calls) == {1}  # one UNet row per step: no guidance branch
    assert_parity(actual, expected)


def test_guidance_rescale(sd1):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=4)
    kwargs = dict(guidance_rescale=0.7, num_inference_steps=STEPS, output_type="np")
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, **kwargs).images
    assert_parity(actual, expected)


def test_v_prediction_sd2(tiny):
    ref = tiny.reference("sd2", "StableDiffusionPipeline")
    pipe = tiny.pipeline("sd2", "StableDiffusionPipeline")
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    latents = initial_latents((1, 4, 8, 8), seed=5)
    expected = ref(PROMPT, num_inference_steps=STEPS, latents=torch.from_numpy(latents)).images
    actual = pipe(PROMPT, num_inference_steps=STEPS, latents=latents).images
    assert_parity(actual, expected)


def test_non_square_size(sd1):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 6, 10), seed=6)
    kwargs = dict(height=48, width=80, num_inference_steps=STEPS, output_type="np")
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, **kwargs).images
    assert actual.shape == (1, 48, 80, 3)
    assert_parity(actual, expected)


def test_callback_on_step_end_sees_and_replaces_latents(sd1):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=8)

    def halve_at_step_1(pipeline, i, t, kwargs):
        assert set(kwargs) == {"latents", "prompt_embeds"}
        return {"latents": kwargs["latents"] * 0.5} if i == 1 else {}

    kwargs = dict(
        num_inference_steps=STEPS,
        callback_on_step_end=halve_at_step_1,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
        output_type="np",
    )
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, **kwargs).images
    assert_parity(actual, expected)


def test_output_types_and_building_blocks(sd1):
    _, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=9)
    pil = pipe(PROMPT, num_inference_steps=2, latents=latents).images
    arr = pipe(PROMPT, num_inference_steps=2, latents=latents, output_type="np").images
    lat = pipe(PROMPT, num_inference_steps=2, latents=latents, output_type="latent").images
    assert pil[0].size == (64, 64) and pil[0].mode == "RGB"
    assert arr.dtype == np.float32 and arr.shape == (1, 64, 64, 3) and 0 <= arr.min() <= arr.max() <= 1
    assert lat.shape == (1, 4, 8, 8)
    np.testing.assert_array_equal(np.asarray(pil[0]), (arr[0] * 255).round().astype(np.uint8))
    # the quick-tour building blocks: a hand-written loop over pipe.unet / scheduler / vae
    ids = pipe.tokenizer(
        [PROMPT], padding="max_length", max_length=pipe.tokenizer.model_max_length, return_tensors="np"
    ).input_ids
    embeds = pipe.text_encoder(ids)["last_hidden_state"]
    pipe.scheduler.set_timesteps(2)
    sample = latents * pipe.scheduler.init_noise_sigma
    for t in pipe.scheduler.timesteps:
        noise_pred = pipe.unet(pipe.scheduler.scale_model_input(sample, t), t, encoder_hidden_states=embeds)
        sample = pipe.scheduler.step(noise_pred, t, sample).prev_sample
    unguided = pipe(PROMPT, guidance_scale=1.0, num_inference_steps=2, latents=latents, output_type="latent")
    np.testing.assert_allclose(sample, unguided.images, atol=1e-5)
    image = pipe.vae.decode(sample / pipe.vae.config.scaling_factor)
    assert image.shape == (1, 3, 64, 64)
