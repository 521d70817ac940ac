"""UniPCMultistepScheduler's own cases against diffusers (its shared grids are in
test_exponential_integrators.py): bh1 / bh2, orders 1-3 and predict_x0, disable_corrector, lower_order_final,
final sigmas, sigma ranges and zero terminal SNR."""

from __future__ import annotations

import pytest

from tests.schedulers import parity
from tests.schedulers.parity import DTYPES, SD15_PIPELINE, XP

NAME = "UniPCMultistepScheduler"


# noise prediction and bh1 divide by zero at a final sigma of 0 (NaN in diffusers too): use sigma_min
@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("solver_type", ["bh1", "bh2"])
@pytest.mark.parametrize("predict_x0", [True, False])
@pytest.mark.parametrize("steps", [3, 10, 25])
def test_order_solver_type_predict_x0(xp, dtype, order, solver_type, predict_x0, steps):
    config = dict(
        SD15_PIPELINE,
        solver_order=order,
        solver_type=solver_type,
        predict_x0=predict_x0,
        final_sigmas_type="sigma_min",
    )
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15_PIPELINE, prediction_type="v_prediction", predict_x0=False, final_sigmas_type="sigma_min"),
        dict(SD15_PIPELINE, disable_corrector=[0, 1, 2]),
        dict(SD15_PIPELINE, disable_corrector=[3], solver_order=3),
        dict(SD15_PIPELINE, lower_order_final=False, final_sigmas_type="sigma_min", solver_order=3),
        dict(SD15_PIPELINE, final_sigmas_type="sigma_min"),
        dict(SD15_PIPELINE, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0),
        dict(SD15_PIPELINE, use_exponential_sigmas=True, final_sigmas_type="sigma_min"),
        dict(
            SD15_PIPELINE,
            rescale_betas_zero_snr=True,
            prediction_type="v_prediction",
            timestep_spacing="trailing",
        ),
    ],
    ids=[
        "v-noise-prediction",
        "no-corrector-early",
        "no-corrector-3",
        "no-lower-order-final",
        "sigma-min",
        "karras-range",
        "exponential-sigma-min",
        "zero-snr",
    ],
)
@pytest.mark.parametrize("steps", [2, 10])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)
