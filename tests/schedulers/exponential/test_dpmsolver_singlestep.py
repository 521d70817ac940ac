"""DPMSolverSinglestepScheduler's own cases against diffusers (its shared grids are in
test_exponential_integrators.py): dpmsolver++ / dpmsolver, orders 1-3, midpoint / heun, lower_order_final,
SDE-DPM-Solver++, v-prediction and its order list."""

from __future__ import annotations

import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DTYPES, SD15_PIPELINE, XP

diffusers = parity.diffusers

NAME = "DPMSolverSinglestepScheduler"


def ours(config):
    return common_checks.ours(NAME, config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["dpmsolver++", "dpmsolver"])
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
@pytest.mark.parametrize("lower_order_final", [False, True])
@pytest.mark.parametrize("steps", [6, 7, 25])
def test_algorithm_order_solver(xp, dtype, algorithm, order, solver_type, lower_order_final, steps):
    config = dict(
        SD15_PIPELINE,
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
    config = dict(SD15_PIPELINE, algorithm_type="sde-dpmsolver++", solver_order=order)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15_PIPELINE, prediction_type="v_prediction"),
        dict(
            SD15_PIPELINE,
            prediction_type="v_prediction",
            algorithm_type="dpmsolver",
            final_sigmas_type="sigma_min",
        ),
    ],
    ids=["v", "dpmsolver-v"],
)
@pytest.mark.parametrize("steps", [2, 10])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


def test_order_list_and_lower_order_final_like_diffusers():
    for order in (1, 2, 3):
        for steps in (1, 2, 3, 4, 5, 6, 7, 25):
            for lower in (False, True):
                config = dict(SD15_PIPELINE, solver_order=order, lower_order_final=lower)
                ref, mine = diffusers.DPMSolverSinglestepScheduler.from_config(config), ours(config)
                ref.set_timesteps(steps)
                mine.set_timesteps(steps)
                assert mine.order_list == ref.order_list
                assert mine.config.lower_order_final == ref.config.lower_order_final
