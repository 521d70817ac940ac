"""DEISMultistepScheduler against diffusers: orders 1-3 (log-rho), lower_order_final, spacings, Karras,
prediction types, add_noise and errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "DEISMultistepScheduler"
SD15 = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    clip_sample=False,
)
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)
# diffusers' DEIS calls np.log on torch tensors, which NumPy 2 warns about at every step
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")


def ours(config):
    from sdrt.schedulers import DEISMultistepScheduler

    return DEISMultistepScheduler.from_config(config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_sd15_step_counts(xp, dtype, karras, steps):
    config = dict(SD15, use_karras_sigmas=karras)
    assert parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp) == steps


@XP
def test_1000_steps(xp):
    # (third order at 1000 steps is dominated by float32 rounding of the coefficients, in diffusers too)
    config = dict(SD15, timestep_spacing="trailing")
    assert parity.run_parity(NAME, config, 1000, dtype=np.float32, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("lower_order_final", [False, True])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("steps", [3, 10, 25])
def test_orders_and_spacings(xp, dtype, order, lower_order_final, spacing, steps):
    config = dict(SD15, solver_order=order, lower_order_final=lower_order_final, timestep_spacing=spacing)
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, prediction_type="v_prediction", timestep_spacing="trailing"),
        dict(SD15, prediction_type="sample"),
        dict(SD15, prediction_type="sample", thresholding=True, sample_max_value=1.5),
        dict(SD15, prediction_type="flow_prediction"),
        dict(SD15, use_karras_sigmas=True, solver_order=3),
        dict(SD15, use_exponential_sigmas=True),
        dict(SD15, use_beta_sigmas=True),
        dict(beta_schedule="squaredcos_cap_v2", solver_order=3),
        dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
    ],
    ids=[
        "v",
        "sample",
        "thresholding",
        "flow-prediction",
        "karras-3",
        "exponential",
        "beta",
        "cosine",
        "trained",
    ],
)
@pytest.mark.parametrize("steps", [2, 10, 25])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
def test_add_noise(xp):
    ref, mine = diffusers.DEISMultistepScheduler.from_config(SD15), ours(SD15)
    ref.set_timesteps(10)
    mine.set_timesteps(10)
    rng = np.random.default_rng(5)
    x0, noise = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((2, 4, 8, 8))
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[1, 6]]).numpy()
    got = mine.add_noise(xp.asarray(x0), xp.asarray(noise), xp.asarray(mine.timesteps[[1, 6]]))
    assert parity.relative_error(got, expected) <= 1e-6


def test_from_config_swap_keeps_diffusers_keys():
    source = diffusers.DPMSolverMultistepScheduler.from_config(dict(SD15, algorithm_type="dpmsolver++"))
    theirs = diffusers.DEISMultistepScheduler.from_config(source.config)
    mine = ours(source.config)
    assert set(mine.config) == set(dict(theirs.config))
    for key, value in theirs.config.items():
        if not key.startswith("_"):
            assert mine.config[key] == value, key


def test_other_solvers_names_are_mapped_like_diffusers():
    mine = ours(dict(SD15, algorithm_type="dpmsolver++", solver_type="midpoint"))
    assert mine.config.algorithm_type == "deis" and mine.config.solver_type == "logrho"


@pytest.mark.parametrize(
    "option,value",
    [
        ("algorithm_type", "unipc"),
        ("solver_type", "rk4"),
        ("solver_order", 4),
        ("timestep_spacing", "cosine"),
    ],
)
def test_bad_option_is_named(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours(dict(SD15, **{option: value}))


def test_step_before_set_timesteps():
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours(SD15).step(np.zeros((1, 4, 2, 2)), 999, np.zeros((1, 4, 2, 2)))


def test_timestep_not_in_schedule():
    scheduler = ours(SD15)
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(np.zeros((1, 4, 2, 2)), 12345, np.zeros((1, 4, 2, 2)))
