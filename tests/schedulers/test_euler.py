"""EulerDiscreteScheduler against diffusers: spacings, sigma spacings, interpolation, prediction and
timestep types, final sigmas, custom schedules, churn, add_noise and errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "EulerDiscreteScheduler"
SD15 = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
SDXL = dict(SD15, timestep_spacing="leading", interpolation_type="linear")
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours(config):
    from sdrt.schedulers import EulerDiscreteScheduler

    return EulerDiscreteScheduler.from_config(config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_sdxl_config_step_counts(xp, dtype, steps):
    assert parity.run_parity(NAME, SDXL, steps, dtype=dtype, xp=xp) == steps


@XP
def test_1000_steps(xp):
    assert parity.run_parity(NAME, SD15, 1000, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_spacings_and_karras(xp, dtype, karras, spacing, steps):
    config = dict(SD15, timestep_spacing=spacing, use_karras_sigmas=karras)
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample", "original_sample"])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_prediction_types(xp, dtype, prediction_type, spacing):
    config = dict(SD15, prediction_type=prediction_type, timestep_spacing=spacing)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, interpolation_type="log_linear"),
        dict(SD15, interpolation_type="log_linear", use_karras_sigmas=True),
        dict(SD15, use_exponential_sigmas=True),
        dict(SD15, use_beta_sigmas=True),
        dict(SD15, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0),
        dict(SD15, final_sigmas_type="sigma_min"),
        dict(SD15, final_sigmas_type="sigma_min", use_karras_sigmas=True, timestep_spacing="trailing"),
        dict(SD15, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction"),
        dict(SD15, rescale_betas_zero_snr=True, timestep_spacing="linspace", prediction_type="v_prediction"),
        dict(SD15, timestep_type="continuous", prediction_type="v_prediction"),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
        dict(SD15, steps_offset=3, timestep_spacing="leading"),
    ],
    ids=[
        "log-linear",
        "log-linear-karras",
        "exponential",
        "beta",
        "karras-range",
        "final-sigma-min",
        "final-sigma-min-karras",
        "zero-snr-trailing",
        "zero-snr-linspace",
        "continuous-v",
        "cosine",
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


def test_add_noise_and_velocity_match_diffusers():
    ref = diffusers.EulerDiscreteScheduler.from_config(SD15)
    sched = ours(SD15)
    ref.set_timesteps(20)
    sched.set_timesteps(20)
    x0 = parity.initial_sample()
    noise = np.random.default_rng(7).standard_normal(x0.shape)
    t_ref, t_ours = ref.timesteps[[0, 5]], sched.timesteps[[0, 5]]
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), t_ref).numpy()
    assert parity.relative_error(sched.add_noise(x0, noise, t_ours), expected) <= 1e-6
    expected = ref.get_velocity(torch.from_numpy(x0), torch.from_numpy(noise), t_ref).numpy()
    assert parity.relative_error(sched.get_velocity(x0, noise, t_ours), expected) <= 1e-6


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
    [
        ("timestep_spacing", "uniform"),
        ("prediction_type", "flow"),
        ("interpolation_type", "cubic"),
        ("timestep_type", "edm"),
        ("final_sigmas_type", "one"),
        ("beta_schedule", "quadratic"),
    ],
)
def test_bad_option_value(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours({option: value})


def test_two_sigma_spacings_refused():
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        ours(dict(use_karras_sigmas=True, use_exponential_sigmas=True))


def test_step_before_set_timesteps():
    sched = ours(SD15)
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        sched.step(x, 999.0, x)


def test_timestep_not_in_schedule():
    common_checks.check_timestep_not_in_schedule(NAME, SD15)


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
