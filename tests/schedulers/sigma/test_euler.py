"""EulerDiscreteScheduler's own cases against diffusers (its shared grids are in test_sigma_schedulers.py):
interpolation, sigma ranges, final sigmas, zero terminal SNR, timestep types, churn, custom schedules,
get_velocity and its extra errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DTYPES, SD15, SDXL, XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "EulerDiscreteScheduler"


def ours(config):
    return common_checks.ours(NAME, config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, interpolation_type="log_linear"),
        dict(SD15, interpolation_type="log_linear", use_karras_sigmas=True),
        dict(SD15, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0),
        dict(SD15, final_sigmas_type="sigma_min"),
        dict(SD15, final_sigmas_type="sigma_min", use_karras_sigmas=True, timestep_spacing="trailing"),
        dict(SD15, rescale_betas_zero_snr=True, timestep_spacing="linspace", prediction_type="v_prediction"),
        dict(SD15, timestep_type="continuous", prediction_type="v_prediction"),
        dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
        dict(SD15, steps_offset=3, timestep_spacing="leading"),
    ],
    ids=[
        "log-linear",
        "log-linear-karras",
        "karras-range",
        "final-sigma-min",
        "final-sigma-min-karras",
        "zero-snr-linspace",
        "continuous-v",
        "trained-betas",
        "offset",
    ],
)
@pytest.mark.parametrize("steps", [3, 25])
def test_config_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_churn_injects_noise(xp, dtype):
    step_kwargs = dict(s_churn=0.8, s_tmin=0.5, s_tmax=20.0, s_noise=1.003)
    parity.run_parity(NAME, SD15, 25, dtype=dtype, xp=xp, step_kwargs=step_kwargs)


@XP
def test_custom_timesteps(xp):
    timesteps = [999.0, 850.5, 700.0, 500.0, 251.25, 100.0, 10.0]
    parity.run_parity(NAME, SD15, None, xp=xp, set_timesteps_kwargs=dict(timesteps=timesteps))


@XP
def test_custom_sigmas(xp):
    sigmas = [14.0, 7.0, 3.0, 1.2, 0.5, 0.1, 0.0]
    parity.run_parity(NAME, SD15, None, xp=xp, set_timesteps_kwargs=dict(sigmas=sigmas))


def test_velocity_matches_diffusers():
    ref, sched = diffusers.EulerDiscreteScheduler.from_config(SD15), ours(SD15)
    ref.set_timesteps(20)
    sched.set_timesteps(20)
    x0 = parity.initial_sample()
    noise = np.random.default_rng(7).standard_normal(x0.shape)
    expected = ref.get_velocity(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[0, 5]]).numpy()
    assert parity.relative_error(sched.get_velocity(x0, noise, sched.timesteps[[0, 5]]), expected) <= 1e-6


def test_step_returns_pred_original_sample():
    sched = ours(SD15)
    sched.set_timesteps(10)
    x = parity.initial_sample() * sched.init_noise_sigma
    t = sched.timesteps[0]
    sched.scale_model_input(x, t)
    out = sched.step(np.zeros_like(x), t, x)
    np.testing.assert_allclose(out.pred_original_sample, x)
    prev, pred = sched.step(np.zeros_like(x), sched.timesteps[1], out.prev_sample, return_dict=False)
    assert prev.shape == pred.shape == x.shape


@pytest.mark.parametrize(
    "option, value",
    [("interpolation_type", "cubic"), ("timestep_type", "edm"), ("final_sigmas_type", "one")],
)
def test_bad_option_value(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours({option: value})


def test_integer_index_refused():
    sched = ours(SD15)
    sched.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="integer index"):
        sched.step(x, 3, x)


@pytest.mark.parametrize(
    "source, target",
    [
        ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler"),
        ("PNDMScheduler", "EulerDiscreteScheduler"),
        ("EulerDiscreteScheduler", "HeunDiscreteScheduler"),
    ],
)
def test_from_config_swap_keys(source, target):
    from sdrt.schedulers import get_scheduler_class

    ref = getattr(diffusers, source).from_config(SDXL)
    expected = dict(getattr(diffusers, target).from_config(ref.config).config)
    mine = get_scheduler_class(target).from_config(get_scheduler_class(source).from_config(SDXL).config)
    assert set(dict(mine.config)) == set(expected)
