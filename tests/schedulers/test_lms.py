"""LMSDiscreteScheduler against diffusers: spacings, Karras/exponential/beta sigmas, prediction types and orders."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "LMSDiscreteScheduler"
SD15 = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
SD21_V = dict(SD15, prediction_type="v_prediction", timestep_spacing="leading")
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours(config):
    from sdrt.schedulers import LMSDiscreteScheduler

    return LMSDiscreteScheduler.from_config(config)


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
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_prediction_types(xp, dtype, prediction_type, spacing):
    config = dict(SD15, prediction_type=prediction_type, timestep_spacing=spacing)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_sd21_v_prediction(xp, dtype):
    parity.run_parity(NAME, SD21_V, 25, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, use_exponential_sigmas=True),
        dict(SD15, use_beta_sigmas=True),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(beta_schedule="linear"),
    ],
    ids=["exponential", "beta", "cosine", "linear"],
)
@pytest.mark.parametrize("steps", [3, 25])
def test_config_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_orders(xp, dtype, order):
    parity.run_parity(NAME, SD15, 25, dtype=dtype, xp=xp, step_kwargs=dict(order=order))


@pytest.mark.parametrize("steps", [4, 10, 50])
@pytest.mark.parametrize("karras", [False, True])
def test_lms_coefficients_match_scipy_quadrature(steps, karras):
    config = dict(SD15, use_karras_sigmas=karras)
    ref, sched = diffusers.LMSDiscreteScheduler.from_config(config), ours(config)
    ref.set_timesteps(steps)
    sched.set_timesteps(steps)
    for t in range(steps):
        order = min(t + 1, 4)
        for k in range(order):
            expected = ref.get_lms_coefficient(order, t, k)
            assert sched.get_lms_coefficient(order, t, k) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_runtime_needs_no_scipy():
    import ast
    import inspect

    from sdrt.schedulers import lms, sigma_schedule

    for module in (lms, sigma_schedule):
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(inspect.getsource(module)))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in getattr(node, "names", [])
        }
        assert "scipy" not in imported
        assert "quad(" not in inspect.getsource(module)


def test_add_noise_matches_diffusers():
    common_checks.check_add_noise(NAME, SD15)


@pytest.mark.parametrize(
    "option, value",
    [("timestep_spacing", "uniform"), ("prediction_type", "flow"), ("beta_schedule", "quadratic")],
)
def test_bad_option_value(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours({option: value})


def test_two_sigma_spacings_refused():
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        ours(dict(use_karras_sigmas=True, use_beta_sigmas=True))


def test_step_before_set_timesteps():
    common_checks.check_step_before_set_timesteps(NAME, SD15)


def test_timestep_not_in_schedule():
    common_checks.check_timestep_not_in_schedule(NAME, SD15)


@pytest.mark.parametrize("source", ["EulerDiscreteScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"])
def test_from_config_swap_keys(source):
    common_checks.check_from_config_swap_keys(NAME, source, dict(SD15, timestep_spacing="leading"))
