"""LCMScheduler against diffusers, with identical injected noise between the consistency steps."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "LCMScheduler"
# The scheduler config of the LCM-distilled SD1.5 models (e.g. LCM_Dreamshaper_v7).
LCM_SD15 = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    set_alpha_to_one=True,
    clip_sample=False,
    original_inference_steps=50,
    timestep_scaling=10.0,
)
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours_class():
    from sdrt.schedulers import LCMScheduler

    return LCMScheduler


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_step_counts(xp, dtype, steps):
    assert parity.run_parity(NAME, LCM_SD15, steps, dtype=dtype, xp=xp) == steps


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_1000_steps(xp, dtype):
    config = dict(LCM_SD15, original_inference_steps=1000)
    assert parity.run_parity(NAME, config, 1000, dtype=dtype, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_prediction_types(xp, dtype, prediction_type):
    parity.run_parity(NAME, dict(LCM_SD15, prediction_type=prediction_type), 4, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize(
    "config, kwargs",
    [
        (dict(LCM_SD15, original_inference_steps=100), {}),
        (LCM_SD15, dict(original_inference_steps=30)),
        (dict(LCM_SD15, timestep_scaling=5.0), {}),
        (LCM_SD15, dict(strength=0.5)),
        (dict(LCM_SD15, clip_sample=True, clip_sample_range=0.8), {}),
        (dict(LCM_SD15, thresholding=True, sample_max_value=1.5, dynamic_thresholding_ratio=0.9), {}),
        (dict(LCM_SD15, set_alpha_to_one=False), {}),
        (dict(LCM_SD15, rescale_betas_zero_snr=True, prediction_type="v_prediction"), {}),
        (dict(LCM_SD15, beta_schedule="linear", beta_start=1e-4, beta_end=0.02), {}),
    ],
    ids=[
        "original-100",
        "original-30-kwarg",
        "scaling-5",
        "strength",
        "clip",
        "thresholding",
        "alpha-not-one",
        "zero-snr",
        "linear",
    ],
)
def test_config_options(xp, config, kwargs):
    parity.run_parity(NAME, config, 6, xp=xp, set_timesteps_kwargs=kwargs)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs",
    [dict(timesteps=[999, 759, 499, 259]), dict(timesteps=[899, 600, 301, 120, 19], strength=0.6)],
    ids=["custom", "custom-strength"],
)
def test_custom_timesteps(xp, dtype, kwargs):
    parity.run_parity(NAME, LCM_SD15, None, dtype=dtype, xp=xp, set_timesteps_kwargs=kwargs)


def test_denoised_and_tuple_output():
    x = parity.initial_sample()
    model_output = parity.fake_model(x, 999.0, np)
    ref = diffusers.LCMScheduler.from_config(LCM_SD15)
    ours = ours_class().from_config(LCM_SD15)
    ref.set_timesteps(4)
    ours.set_timesteps(4)
    with parity.injected_noise():
        expected = ref.step(torch.from_numpy(model_output), ref.timesteps[0], torch.from_numpy(x))
    prev_sample, denoised = ours.step(
        model_output,
        ours.timesteps[0],
        x,
        generator=np.random.default_rng(parity.SEED + 1),
        return_dict=False,
    )
    assert parity.relative_error(denoised, expected.denoised.numpy()) <= 1e-6
    assert parity.relative_error(prev_sample, expected.prev_sample.numpy()) <= 1e-6
    assert ours.step_index == 1


def test_previous_timestep_and_begin_index():
    ref = diffusers.LCMScheduler.from_config(LCM_SD15)
    ours = ours_class().from_config(LCM_SD15)
    ref.set_timesteps(4)
    ours.set_timesteps(4)
    for t in ours.timesteps:
        assert ours.previous_timestep(t) == int(ref.previous_timestep(torch.tensor(t)))
    ours.set_begin_index(2)
    x = parity.initial_sample()
    ours.step(x, ours.timesteps[2], x, generator=np.random.default_rng(0))
    assert ours.step_index == 3


def test_add_noise_and_get_velocity():
    ref = diffusers.LCMScheduler.from_config(LCM_SD15)
    ours = ours_class().from_config(LCM_SD15)
    x0 = parity.initial_sample(np.float32)
    noise = np.random.default_rng(7).standard_normal(x0.shape).astype(np.float32)
    timesteps = np.array([259, 999])
    args_ref = (torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(timesteps))
    for method in ("add_noise", "get_velocity"):
        expected = getattr(ref, method)(*args_ref).numpy()
        np.testing.assert_allclose(
            getattr(ours, method)(x0, noise, timesteps), expected, rtol=1e-6, atol=1e-6
        )


def test_set_timesteps_errors():
    scheduler = ours_class().from_config(LCM_SD15)
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.set_timesteps()
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.set_timesteps(4, timesteps=[999, 499])
    with pytest.raises(ValueError, match="original_inference_steps"):
        scheduler.set_timesteps(51)
    with pytest.raises(ValueError, match="strength"):
        scheduler.set_timesteps(30, strength=0.5)
    with pytest.raises(ValueError, match="descending"):
        scheduler.set_timesteps(timesteps=[499, 999])


@pytest.mark.parametrize("option, value", [("prediction_type", "score"), ("beta_schedule", "sigmoid")])
def test_bad_option_values_name_the_option(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours_class()(**{option: value})


def test_step_before_set_timesteps():
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours_class()().step(x, 999, x)


def test_timestep_not_in_schedule():
    scheduler = ours_class().from_config(LCM_SD15)
    scheduler.set_timesteps(4)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(x, 500, x)


@pytest.mark.parametrize("source", ["DDIMScheduler", "PNDMScheduler"])
def test_from_config_swap_keeps_diffusers_keys(source):
    from sdrt.schedulers import get_scheduler_class

    ref_source = getattr(diffusers, source).from_config(dict(LCM_SD15, skip_prk_steps=True))
    ours_source = get_scheduler_class(source).from_config(dict(LCM_SD15, skip_prk_steps=True))
    expected = diffusers.LCMScheduler.from_config(ref_source.config).config
    swapped = ours_class().from_config(ours_source.config)
    assert set(swapped.config) == set(expected)
    for key in expected:
        if not key.startswith("_"):
            assert swapped.config[key] == expected[key], key
    assert ours_class()().compatibles == []
