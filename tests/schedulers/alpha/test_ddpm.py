"""DDPMScheduler's own cases against diffusers (its shared grids are in test_alpha_schedulers.py): the fixed and
learned variance types, stepping before set_timesteps, previous_timestep and its extra errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DTYPES, SD15_PIPELINE, XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "DDPMScheduler"


def ours(config):
    return common_checks.ours(NAME, config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_small_log", "fixed_large"])
def test_fixed_variance_types(xp, dtype, variance_type):
    parity.run_parity(NAME, dict(SD15_PIPELINE, variance_type=variance_type), 25, dtype=dtype, xp=xp)


def learned_model(x, t, lib):
    """A fake model predicting epsilon and a variance channel block in (0, 1)."""
    eps = parity.fake_model(x, t, lib)
    variance = 0.5 + 0.4 * lib.tanh(x + t / 500.0)
    return lib.cat([eps, variance], 1) if lib is torch else lib.concatenate([eps, variance], 1)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variance_type", ["learned", "learned_range"])
def test_learned_variance(xp, dtype, variance_type):
    """Models that output twice the channels: the second half is the (log-)variance."""
    config = dict(variance_type=variance_type)
    with parity.injected_noise():
        ref = diffusers.DDPMScheduler.from_config(config)
        mine = ours(config)
        ref.set_timesteps(25)
        mine.set_timesteps(25)
        x_ref = torch.from_numpy(parity.initial_sample(dtype))
        x_ours = xp.asarray(parity.initial_sample(dtype))
        generator = parity.noise_generator(parity.SEED + 1, xp)
        for t_ref, t_ours in zip(ref.timesteps, mine.timesteps):
            x_ref = ref.step(learned_model(x_ref, float(t_ref), torch), t_ref, x_ref).prev_sample
            out = mine.step(learned_model(x_ours, float(t_ours), xp), t_ours, x_ours, generator=generator)
            x_ours = out.prev_sample
            assert x_ours.dtype == dtype
            assert parity.relative_error(x_ours, x_ref.numpy()) <= parity.TOLERANCE[dtype]


def test_learned_variance_needs_double_channels():
    scheduler = ours(dict(variance_type="learned_range"))
    scheduler.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="twice the sample's channels"):
        scheduler.step(x, scheduler.timesteps[0], x)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_fixed_large_log_is_nan_as_in_diffusers():
    """diffusers takes the square root of log(beta) < 0 for fixed_large_log: the result is NaN in both."""
    config = dict(variance_type="fixed_large_log")
    x = parity.initial_sample()
    with parity.injected_noise():
        ref = diffusers.DDPMScheduler.from_config(config)
        ref.set_timesteps(10)
        expected = ref.step(torch.from_numpy(x), ref.timesteps[0], torch.from_numpy(x)).prev_sample
    mine = ours(config)
    mine.set_timesteps(10)
    actual = mine.step(x, mine.timesteps[0], x, generator=np.random.default_rng(0)).prev_sample
    assert torch.isnan(expected).all() and np.isnan(actual).all()


def test_step_without_set_timesteps_walks_every_training_timestep():
    """Before set_timesteps, diffusers' DDPM steps from t to t - 1; so does ours."""
    x = parity.initial_sample()
    with parity.injected_noise():
        ref = diffusers.DDPMScheduler()
        expected = ref.step(torch.from_numpy(x), 500, torch.from_numpy(x)).prev_sample.numpy()
    mine = ours({})
    assert mine.previous_timestep(500) == 499
    actual = mine.step(x, 500, x, generator=np.random.default_rng(parity.SEED + 1)).prev_sample
    assert parity.relative_error(actual, expected) <= 1e-5


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_previous_timestep(spacing):
    ref = diffusers.DDPMScheduler(timestep_spacing=spacing, steps_offset=1)
    mine = ours(dict(timestep_spacing=spacing, steps_offset=1))
    ref.set_timesteps(7)
    mine.set_timesteps(7)
    for t in mine.timesteps:
        assert mine.previous_timestep(t) == int(ref.previous_timestep(torch.tensor(t)))
    ref.set_timesteps(timesteps=[900, 500, 20])
    mine.set_timesteps(timesteps=[900, 500, 20])
    assert [mine.previous_timestep(t) for t in (900, 500, 20)] == [500, 20, -1]


def test_timestep_not_in_schedule():
    scheduler = ours({})
    scheduler.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(x, 123, x)
    with pytest.raises(ValueError, match="outside the training timesteps"):
        scheduler.step(x, 1000, x)


def test_set_timesteps_errors():
    scheduler = ours({})
    with pytest.raises(ValueError, match="descending"):
        scheduler.set_timesteps(timesteps=[10, 20])
    with pytest.raises(ValueError, match="cannot exceed"):
        scheduler.set_timesteps(1001)
    with pytest.raises(ValueError, match="not both"):
        scheduler.set_timesteps(10, timesteps=[20, 10])
