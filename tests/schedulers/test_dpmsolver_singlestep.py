"""DPMSolverSinglestepScheduler against diffusers: dpmsolver++ / dpmsolver, orders 1-3, midpoint / heun,
lower_order_final, final sigmas, Karras, prediction types, add_noise and errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "DPMSolverSinglestepScheduler"
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


def ours(config):
    from sdrt.schedulers import DPMSolverSinglestepScheduler

    return DPMSolverSinglestepScheduler.from_config(config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_sd15_step_counts(xp, dtype, karras, steps):
    config = dict(SD15, use_karras_sigmas=karras)
    assert parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp) == steps


@XP
def test_1000_steps(xp):
    assert parity.run_parity(NAME, dict(SD15, solver_order=3), 1000, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["dpmsolver++", "dpmsolver"])
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
@pytest.mark.parametrize("lower_order_final", [False, True])
@pytest.mark.parametrize("steps", [6, 7, 25])
def test_algorithm_order_solver(xp, dtype, algorithm, order, solver_type, lower_order_final, steps):
    config = dict(
        SD15,
        algorithm_type=algorithm,
        solver_order=order,
        solver_type=solver_type,
        lower_order_final=lower_order_final,
        final_sigmas_type="sigma_min",
    )
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2])
def test_sde_dpmsolver_pp(xp, dtype, order):
    # (the third-order SDE update diverges in diffusers itself, so it has no reference to match)
    config = dict(SD15, algorithm_type="sde-dpmsolver++", solver_order=order)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, prediction_type="v_prediction"),
        dict(SD15, prediction_type="v_prediction", algorithm_type="dpmsolver", final_sigmas_type="sigma_min"),
        dict(SD15, prediction_type="sample", solver_order=3),
        dict(SD15, prediction_type="sample", thresholding=True, sample_max_value=1.5),
        dict(SD15, prediction_type="flow_prediction", solver_order=3),
        dict(SD15, use_karras_sigmas=True, solver_order=3, final_sigmas_type="sigma_min"),
        dict(SD15, use_exponential_sigmas=True),
        dict(SD15, lambda_min_clipped=-5.1),
        dict(beta_schedule="squaredcos_cap_v2", solver_order=3),
        dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
    ],
    ids=[
        "v",
        "dpmsolver-v",
        "sample-3",
        "thresholding",
        "flow-prediction",
        "karras-3-sigma-min",
        "exponential",
        "clipped",
        "cosine",
        "trained",
    ],
)
@pytest.mark.parametrize("steps", [2, 10])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
def test_custom_timesteps(xp):
    timesteps = [999, 850, 700, 500, 300, 120, 20]
    n = parity.run_parity(NAME, SD15, None, xp=xp, set_timesteps_kwargs={"timesteps": timesteps})
    assert n == len(timesteps)


def test_order_list_and_lower_order_final_like_diffusers():
    for order in (1, 2, 3):
        for steps in (1, 2, 3, 4, 5, 6, 7, 25):
            for lower in (False, True):
                config = dict(SD15, solver_order=order, lower_order_final=lower)
                ref, mine = diffusers.DPMSolverSinglestepScheduler.from_config(config), ours(config)
                ref.set_timesteps(steps)
                mine.set_timesteps(steps)
                assert mine.order_list == ref.order_list
                assert mine.config.lower_order_final == ref.config.lower_order_final


@XP
def test_add_noise(xp):
    ref, mine = diffusers.DPMSolverSinglestepScheduler.from_config(SD15), ours(SD15)
    ref.set_timesteps(10)
    mine.set_timesteps(10)
    rng = np.random.default_rng(5)
    x0, noise = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((2, 4, 8, 8))
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[1, 6]]).numpy()
    got = mine.add_noise(xp.asarray(x0), xp.asarray(noise), xp.asarray(mine.timesteps[[1, 6]]))
    assert parity.relative_error(got, expected) <= 1e-6


def test_from_config_swap_keeps_diffusers_keys():
    source = diffusers.PNDMScheduler.from_config(SD15)
    theirs = diffusers.DPMSolverSinglestepScheduler.from_config(source.config)
    mine = ours(source.config)
    assert set(mine.config) == set(dict(theirs.config))
    for key, value in theirs.config.items():
        if not key.startswith("_"):
            assert mine.config[key] == value, key


@pytest.mark.parametrize(
    "option,value",
    [
        ("algorithm_type", "sde-dpmsolver"),
        ("solver_type", "rk4"),
        ("solver_order", 4),
        ("use_flow_sigmas", True),
        ("beta_schedule", "sigmoid"),
    ],
)
def test_bad_option_is_named(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours(dict(SD15, **{option: value}))


def test_invalid_combinations():
    with pytest.raises(ValueError, match="final_sigmas_type"):
        ours(dict(SD15, algorithm_type="dpmsolver"))
    with pytest.raises(ValueError, match="timesteps"):
        ours(dict(SD15, use_karras_sigmas=True)).set_timesteps(timesteps=[999, 500])


def test_step_before_set_timesteps():
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours(SD15).step(np.zeros((1, 4, 2, 2)), 999, np.zeros((1, 4, 2, 2)))


def test_timestep_not_in_schedule():
    scheduler = ours(SD15)
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(np.zeros((1, 4, 2, 2)), 12345, np.zeros((1, 4, 2, 2)))
