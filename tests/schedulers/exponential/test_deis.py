"""DEISMultistepScheduler's own cases against diffusers (its shared grids are in
test_exponential_integrators.py): orders 1-3 (log-rho) with and without lower_order_final at every spacing,
and the options only it runs."""

from __future__ import annotations

import pytest

from tests.schedulers import parity
from tests.schedulers.parity import DTYPES, SD15_PIPELINE, XP

NAME = "DEISMultistepScheduler"


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("lower_order_final", [False, True])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("steps", [3, 10, 25])
def test_orders_and_spacings(xp, dtype, order, lower_order_final, spacing, steps):
    config = dict(
        SD15_PIPELINE, solver_order=order, lower_order_final=lower_order_final, timestep_spacing=spacing
    )
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15_PIPELINE, prediction_type="sample"),
        dict(SD15_PIPELINE, prediction_type="flow_prediction"),
        dict(SD15_PIPELINE, use_karras_sigmas=True, solver_order=3),
    ],
    ids=["sample", "flow-prediction", "karras-3"],
)
@pytest.mark.parametrize("steps", [2, 10, 25])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)
