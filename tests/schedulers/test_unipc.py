"""UniPCMultistepScheduler against diffusers: bh1 / bh2, orders 1-3, predict_x0, disable_corrector,
lower_order_final, final sigmas, Karras / exponential sigmas, spacings, prediction types, add_noise, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "UniPCMultistepScheduler"
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
    from sdrt.schedulers import UniPCMultistepScheduler

    return UniPCMultistepScheduler.from_config(config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_sd15_step_counts(xp, dtype, karras, steps):
    config = dict(SD15, use_karras_sigmas=karras)
    assert parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp) == steps


@XP
def test_1000_steps(xp):
    config = dict(SD15, timestep_spacing="trailing", solver_order=3)
    assert parity.run_parity(NAME, config, 1000, xp=xp) == 1000


# noise prediction and bh1 divide by zero at a final sigma of 0 (NaN in diffusers too): use sigma_min
@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("solver_type", ["bh1", "bh2"])
@pytest.mark.parametrize("predict_x0", [True, False])
@pytest.mark.parametrize("steps", [3, 10, 25])
def test_order_solver_type_predict_x0(xp, dtype, order, solver_type, predict_x0, steps):
    config = dict(
        SD15,
        solver_order=order,
        solver_type=solver_type,
        predict_x0=predict_x0,
        final_sigmas_type="sigma_min",
    )
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


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
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, prediction_type="v_prediction", timestep_spacing="trailing"),
        dict(SD15, prediction_type="v_prediction", predict_x0=False, final_sigmas_type="sigma_min"),
        dict(SD15, prediction_type="sample", solver_order=3),
        dict(SD15, prediction_type="sample", thresholding=True, sample_max_value=1.5),
        dict(SD15, prediction_type="flow_prediction", solver_order=3),
        dict(SD15, disable_corrector=[0, 1, 2]),
        dict(SD15, disable_corrector=[3], solver_order=3),
        dict(SD15, lower_order_final=False, final_sigmas_type="sigma_min", solver_order=3),
        dict(SD15, final_sigmas_type="sigma_min"),
        dict(SD15, use_karras_sigmas=True, solver_order=3, final_sigmas_type="sigma_min"),
        dict(SD15, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0),
        dict(SD15, use_exponential_sigmas=True),
        dict(SD15, use_exponential_sigmas=True, final_sigmas_type="sigma_min"),
        dict(SD15, use_beta_sigmas=True),
        dict(SD15, rescale_betas_zero_snr=True, prediction_type="v_prediction", timestep_spacing="trailing"),
        dict(beta_schedule="squaredcos_cap_v2", solver_order=3),
        dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
        dict(SD15, steps_offset=3, timestep_spacing="leading"),
    ],
    ids=[
        "v-trailing",
        "v-noise-prediction",
        "sample-3",
        "thresholding",
        "flow-prediction",
        "no-corrector-early",
        "no-corrector-3",
        "no-lower-order-final",
        "sigma-min",
        "karras-3-sigma-min",
        "karras-range",
        "exponential",
        "exponential-sigma-min",
        "beta",
        "zero-snr",
        "cosine",
        "trained",
        "steps-offset",
    ],
)
@pytest.mark.parametrize("steps", [2, 10])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
def test_add_noise(xp):
    ref, mine = diffusers.UniPCMultistepScheduler.from_config(SD15), ours(SD15)
    ref.set_timesteps(10)
    mine.set_timesteps(10)
    rng = np.random.default_rng(5)
    x0, noise = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((2, 4, 8, 8))
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[1, 6]]).numpy()
    got = mine.add_noise(xp.asarray(x0), xp.asarray(noise), xp.asarray(mine.timesteps[[1, 6]]))
    assert parity.relative_error(got, expected) <= 1e-6


def test_from_config_swap_keeps_diffusers_keys():
    source = diffusers.PNDMScheduler.from_config(SD15)
    theirs = diffusers.UniPCMultistepScheduler.from_config(source.config)
    mine = ours(source.config)
    assert set(mine.config) == set(dict(theirs.config))
    for key, value in theirs.config.items():
        if not key.startswith("_"):
            assert mine.config[key] == value, key


def test_other_solvers_names_are_mapped_like_diffusers():
    assert ours(dict(SD15, solver_type="midpoint")).config.solver_type == "bh2"


@pytest.mark.parametrize(
    "option,value",
    [
        ("solver_type", "bh3"),
        ("solver_order", 4),
        ("timestep_spacing", "cosine"),
        ("use_flow_sigmas", True),
        ("final_sigmas_type", "sigma_max"),
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
