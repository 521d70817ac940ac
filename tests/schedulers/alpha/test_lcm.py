"""LCMScheduler's own cases against diffusers (its shared grids are in test_alpha_schedulers.py): the original
schedule, timestep scaling, strength and the other options at 6 steps, the denoised output, begin index and its
extra errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import LCM_SD15, XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "LCMScheduler"


def ours(config):
    return common_checks.ours(NAME, config)


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


def test_denoised_and_tuple_output():
    x = parity.initial_sample()
    model_output = parity.fake_model(x, 999.0, np)
    ref = diffusers.LCMScheduler.from_config(LCM_SD15)
    mine = ours(LCM_SD15)
    ref.set_timesteps(4)
    mine.set_timesteps(4)
    with parity.injected_noise():
        expected = ref.step(torch.from_numpy(model_output), ref.timesteps[0], torch.from_numpy(x))
    prev_sample, denoised = mine.step(
        model_output,
        mine.timesteps[0],
        x,
        generator=np.random.default_rng(parity.SEED + 1),
        return_dict=False,
    )
    assert parity.relative_error(denoised, expected.denoised.numpy()) <= 1e-6
    assert parity.relative_error(prev_sample, expected.prev_sample.numpy()) <= 1e-6
    assert mine.step_index == 1


def test_previous_timestep_and_begin_index():
    ref = diffusers.LCMScheduler.from_config(LCM_SD15)
    mine = ours(LCM_SD15)
    ref.set_timesteps(4)
    mine.set_timesteps(4)
    for t in mine.timesteps:
        assert mine.previous_timestep(t) == int(ref.previous_timestep(torch.tensor(t)))
    mine.set_begin_index(2)
    x = parity.initial_sample()
    mine.step(x, mine.timesteps[2], x, generator=np.random.default_rng(0))
    assert mine.step_index == 3


def test_set_timesteps_errors():
    scheduler = ours(LCM_SD15)
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


def test_timestep_not_in_schedule():
    scheduler = ours(LCM_SD15)
    scheduler.set_timesteps(4)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(x, 500, x)


def test_no_compatibles():
    assert ours({}).compatibles == []
