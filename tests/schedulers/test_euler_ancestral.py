"""EulerAncestralDiscreteScheduler against diffusers: spacings, prediction types and zero terminal SNR, with identical injected noise."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "EulerAncestralDiscreteScheduler"
SD15 = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
SD21_V = dict(SD15, prediction_type="v_prediction", timestep_spacing="leading")
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours(config):
    from sdrt.schedulers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler.from_config(config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_sd15_step_counts(xp, dtype, steps):
    parity.run_parity(NAME, dict(SD15, timestep_spacing="leading"), steps, dtype=dtype, xp=xp)


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
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_prediction_types(xp, dtype, prediction_type, spacing):
    config = dict(SD15, prediction_type=prediction_type, timestep_spacing=spacing)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_sd21_v_prediction(xp, dtype):
    parity.run_parity(NAME, SD21_V, 25, dtype=dtype, xp=xp)


@XP
def test_1000_steps(xp):
    assert parity.run_parity(NAME, SD15, 1000, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction"),
        dict(SD15, rescale_betas_zero_snr=True, timestep_spacing="leading", prediction_type="v_prediction"),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(beta_schedule="linear"),
    ],
    ids=["zero-snr-trailing", "zero-snr-leading", "cosine", "linear"],
)
@pytest.mark.parametrize("steps", [3, 7, 25])
def test_config_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@pytest.mark.xfail(
    reason="zero terminal SNR with linspace spacing: sigma_down = sqrt(sigma_to^2 - sigma_up^2) loses most "
    "digits in float32 at sigma_from = 4096, so one ulp of torch's float32 sqrt changes diffusers' result "
    "(measured 1.4e-4 relative at 3 steps)",
    strict=False,
)
def test_zero_snr_linspace_ill_conditioned():
    config = dict(
        SD15, rescale_betas_zero_snr=True, timestep_spacing="linspace", prediction_type="v_prediction"
    )
    parity.run_parity(NAME, config, 3)


def test_sample_prediction_refused():
    with pytest.raises(NotImplementedError, match="prediction_type"):
        ours(dict(prediction_type="sample"))


def test_add_noise_matches_diffusers():
    common_checks.check_add_noise(NAME, SD15)


@pytest.mark.parametrize(
    "option, value",
    [("timestep_spacing", "uniform"), ("prediction_type", "flow"), ("beta_schedule", "quadratic")],
)
def test_bad_option_value(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours({option: value})


def test_step_before_set_timesteps():
    common_checks.check_step_before_set_timesteps(NAME, SD15)


def test_timestep_not_in_schedule():
    common_checks.check_timestep_not_in_schedule(NAME, SD15)


@pytest.mark.parametrize("source", ["EulerDiscreteScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"])
def test_from_config_swap_keys(source):
    common_checks.check_from_config_swap_keys(NAME, source, dict(SD15, timestep_spacing="leading"))
