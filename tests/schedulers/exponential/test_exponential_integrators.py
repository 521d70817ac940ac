"""The tests the four exponential-integrator solvers (DPM-Solver multistep and singlestep, DEIS, UniPC) share,
against diffusers: SD 1.5 step counts with and without Karras sigmas, 1000 steps, spacings, custom timesteps,
common config options and beta schedules, add_noise, from_config swaps and errors. Each runs the grid ``GRIDS``
gives its solver; what only one solver has is in its own file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.schedulers import parity
from tests.schedulers.common_checks import ours
from tests.schedulers.parity import DPMPP_2M, DTYPES, SD15_PIPELINE, XP

torch = parity.torch
diffusers = parity.diffusers


# options run on top of a solver's base config
OPTIONS = {
    "exponential": dict(use_exponential_sigmas=True),
    "beta": dict(use_beta_sigmas=True),
    "thresholding": dict(prediction_type="sample", thresholding=True, sample_max_value=1.5),
    "v-trailing": dict(prediction_type="v_prediction", timestep_spacing="trailing"),
    "sample-3": dict(prediction_type="sample", solver_order=3),
    "flow-prediction-3": dict(prediction_type="flow_prediction", solver_order=3),
    "karras-3-sigma-min": dict(use_karras_sigmas=True, solver_order=3, final_sigmas_type="sigma_min"),
    "lambda-min-clipped": dict(lambda_min_clipped=-5.1),
    "steps-offset": dict(steps_offset=3, timestep_spacing="leading"),
}
# beta schedules, run instead of the base config
SCHEDULES = {
    "cosine-3": dict(beta_schedule="squaredcos_cap_v2", solver_order=3),
    "trained-betas": dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
}


@dataclass(frozen=True)
class Grid:
    """What the shared tests run for one solver; the defaults are the most common grid."""

    base: dict[str, Any] = field(default_factory=lambda: SD15_PIPELINE)  # step counts, spacings, options
    thousand_steps: dict[str, Any] = field(default_factory=dict)  # on top of base
    thousand_steps_dtypes: tuple[type, ...] = (np.float64,)
    spacing_steps: tuple[int, ...] = ()  # with every spacing, with and without Karras sigmas
    custom_timesteps: bool = False
    options: tuple[str, ...] = ("exponential", "beta", "thresholding", "cosine-3", "trained-betas")
    option_steps: tuple[int, ...] = (2, 10)
    add_noise_karras: tuple[bool, ...] = (False,)
    swap_source: tuple[str, dict[str, Any]] = ("PNDMScheduler", SD15_PIPELINE)
    swap_onward: str | None = None  # then on to this solver, keeping what diffusers keeps
    mapped_names: tuple[dict[str, Any], dict[str, Any]] | None = None  # other solvers' names -> ours
    bad_options: tuple[tuple[str, Any], ...] = ()  # each refused, by name, on top of SD15_PIPELINE


GRIDS = {
    "DPMSolverMultistepScheduler": Grid(
        base=DPMPP_2M,
        # linspace and leading spacing repeat timesteps at 1000 steps, where diffusers itself gives NaN.
        thousand_steps=dict(timestep_spacing="trailing"),
        thousand_steps_dtypes=(np.float64, np.float32),
        spacing_steps=(1, 4, 25),
        custom_timesteps=True,
        options=(
            "exponential",
            "beta",
            "thresholding",
            "lambda-min-clipped",
            "steps-offset",
            "trained-betas",
        ),
        add_noise_karras=(False, True),
        swap_onward="UniPCMultistepScheduler",
        mapped_names=(
            dict(algorithm_type="deis", solver_type="bh2", final_sigmas_type="sigma_min"),
            dict(algorithm_type="dpmsolver++", solver_type="midpoint"),
        ),
        bad_options=(
            ("algorithm_type", "dpm"),
            ("solver_type", "rk4"),
            ("solver_order", 4),
            ("timestep_spacing", "cosine"),
            ("beta_schedule", "sigmoid"),
            ("use_dynamic_shifting", True),
        ),
    ),
    "DPMSolverSinglestepScheduler": Grid(
        thousand_steps=dict(solver_order=3),
        custom_timesteps=True,
        options=(
            "exponential",
            "thresholding",
            "lambda-min-clipped",
            "sample-3",
            "flow-prediction-3",
            "karras-3-sigma-min",
            "cosine-3",
            "trained-betas",
        ),
        bad_options=(
            ("algorithm_type", "sde-dpmsolver"),
            ("solver_type", "rk4"),
            ("solver_order", 4),
            ("use_flow_sigmas", True),
            ("beta_schedule", "sigmoid"),
        ),
    ),
    "DEISMultistepScheduler": Grid(
        # (third order at 1000 steps is dominated by float32 rounding of the coefficients, in diffusers too)
        thousand_steps=dict(timestep_spacing="trailing"),
        thousand_steps_dtypes=(np.float32,),
        options=("exponential", "beta", "thresholding", "v-trailing", "cosine-3", "trained-betas"),
        option_steps=(2, 10, 25),
        swap_source=("DPMSolverMultistepScheduler", dict(SD15_PIPELINE, algorithm_type="dpmsolver++")),
        mapped_names=(
            dict(algorithm_type="dpmsolver++", solver_type="midpoint"),
            dict(algorithm_type="deis", solver_type="logrho"),
        ),
        bad_options=(
            ("algorithm_type", "unipc"),
            ("solver_type", "rk4"),
            ("solver_order", 4),
            ("timestep_spacing", "cosine"),
        ),
    ),
    "UniPCMultistepScheduler": Grid(
        thousand_steps=dict(timestep_spacing="trailing", solver_order=3),
        spacing_steps=(1, 4, 25),
        options=(
            "exponential",
            "beta",
            "thresholding",
            "v-trailing",
            "sample-3",
            "flow-prediction-3",
            "karras-3-sigma-min",
            "steps-offset",
            "cosine-3",
            "trained-betas",
        ),
        mapped_names=(dict(solver_type="midpoint"), dict(solver_type="bh2")),
        bad_options=(
            ("solver_type", "bh3"),
            ("solver_order", 4),
            ("timestep_spacing", "cosine"),
            ("use_flow_sigmas", True),
            ("final_sigmas_type", "sigma_max"),
        ),
    ),
}
DPM_SOLVERS = [name for name in GRIDS if name.startswith("DPMSolver")]


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
@pytest.mark.parametrize("name", GRIDS)
def test_step_counts(xp, dtype, karras, steps, name):
    config = dict(GRIDS[name].base, use_karras_sigmas=karras)
    assert parity.run_parity(name, config, steps, dtype=dtype, xp=xp) == steps


@XP
@pytest.mark.parametrize("name, dtype", [(n, d) for n, g in GRIDS.items() for d in g.thousand_steps_dtypes])
def test_1000_steps(xp, name, dtype):
    grid = GRIDS[name]
    config = dict(grid.base, **grid.thousand_steps)
    assert parity.run_parity(name, config, 1000, dtype=dtype, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("name, steps", [(n, s) for n, g in GRIDS.items() for s in g.spacing_steps])
def test_spacings_and_karras(xp, dtype, karras, spacing, name, steps):
    config = dict(GRIDS[name].base, timestep_spacing=spacing, use_karras_sigmas=karras)
    parity.run_parity(name, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, option, steps",
    [(n, o, s) for n, g in GRIDS.items() for o in g.options for s in g.option_steps],
)
def test_options(xp, dtype, name, option, steps):
    config = SCHEDULES[option] if option in SCHEDULES else dict(GRIDS[name].base, **OPTIONS[option])
    parity.run_parity(name, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if g.custom_timesteps])
def test_custom_timesteps(xp, name):
    timesteps = [999, 850, 700, 500, 300, 120, 20]
    config = GRIDS[name].base
    n = parity.run_parity(name, config, None, xp=xp, set_timesteps_kwargs={"timesteps": timesteps})
    assert n == len(timesteps)


@XP
@pytest.mark.parametrize("name, karras", [(n, k) for n, g in GRIDS.items() for k in g.add_noise_karras])
def test_add_noise(xp, name, karras):
    config = dict(GRIDS[name].base, use_karras_sigmas=True) if karras else GRIDS[name].base
    ref, mine = getattr(diffusers, name).from_config(config), ours(name, config)
    ref.set_timesteps(10)
    mine.set_timesteps(10)
    rng = np.random.default_rng(5)
    x0, noise = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((2, 4, 8, 8))
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[1, 6]]).numpy()
    got = mine.add_noise(xp.asarray(x0), xp.asarray(noise), xp.asarray(mine.timesteps[[1, 6]]))
    assert parity.relative_error(got, expected) <= 1e-6


@pytest.mark.parametrize("name", GRIDS)
def test_from_config_swap_keeps_diffusers_keys(name):
    grid = GRIDS[name]
    source_name, source_config = grid.swap_source
    source = getattr(diffusers, source_name).from_config(source_config)
    theirs = getattr(diffusers, name).from_config(source.config)
    mine = ours(name, source.config)
    assert set(mine.config) == set(dict(theirs.config))
    for key, value in theirs.config.items():
        if not key.startswith("_"):
            assert mine.config[key] == value, key
    if grid.swap_onward:
        onward = ours(grid.swap_onward, mine.config)
        assert set(onward.config) == set(
            dict(getattr(diffusers, grid.swap_onward).from_config(theirs.config).config)
        )


@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if g.mapped_names])
def test_other_solvers_names_are_mapped_like_diffusers(name):
    given, expected = GRIDS[name].mapped_names
    mine = ours(name, dict(SD15_PIPELINE, **given))
    assert {key: mine.config[key] for key in expected} == expected


@pytest.mark.parametrize(
    "name, option, value", [(n, *bad) for n, g in GRIDS.items() for bad in g.bad_options]
)
def test_bad_option_is_named(name, option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours(name, dict(SD15_PIPELINE, **{option: value}))


@pytest.mark.parametrize("name", DPM_SOLVERS)
def test_dpmsolver_needs_a_final_sigma(name):
    with pytest.raises(ValueError, match="final_sigmas_type"):
        ours(name, dict(SD15_PIPELINE, algorithm_type="dpmsolver"))


@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if g.custom_timesteps])
def test_custom_timesteps_with_karras_refused(name):
    with pytest.raises(ValueError, match="timesteps"):
        ours(name, dict(SD15_PIPELINE, use_karras_sigmas=True)).set_timesteps(timesteps=[999, 500])


@pytest.mark.parametrize("name", GRIDS)
def test_step_before_set_timesteps(name):
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours(name, SD15_PIPELINE).step(np.zeros((1, 4, 2, 2)), 999, np.zeros((1, 4, 2, 2)))


@pytest.mark.parametrize("name", GRIDS)
def test_timestep_not_in_schedule(name):
    scheduler = ours(name, SD15_PIPELINE)
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(np.zeros((1, 4, 2, 2)), 12345, np.zeros((1, 4, 2, 2)))
