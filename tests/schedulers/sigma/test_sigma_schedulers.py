"""The tests the six sigma-space schedulers (Euler, Euler ancestral, Heun, LMS, KDPM2, KDPM2 ancestral) share,
against diffusers: step counts, spacings with and without Karras sigmas, prediction types, SD 2.1 v-prediction,
1000 steps, sigma spacings and beta schedules, add_noise and errors. Each runs the grid ``GRIDS`` gives its
scheduler; what only one scheduler has is in its own file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DTYPES, SD15, SDXL, XP

LEADING = dict(SD15, timestep_spacing="leading")
SD21_V = dict(SD15, prediction_type="v_prediction", timestep_spacing="leading")
ZERO_SNR_V = dict(SD15, rescale_betas_zero_snr=True, prediction_type="v_prediction")
OPTIONS = {
    "exponential": dict(SD15, use_exponential_sigmas=True),
    "beta": dict(SD15, use_beta_sigmas=True),
    "cosine": dict(beta_schedule="squaredcos_cap_v2"),
    "linear": dict(beta_schedule="linear"),
    "zero-snr-trailing": dict(ZERO_SNR_V, timestep_spacing="trailing"),
    "zero-snr-leading": dict(ZERO_SNR_V, timestep_spacing="leading"),
}


@dataclass(frozen=True)
class Grid:
    """What the shared tests run for one scheduler; the defaults are the most common grid."""

    stages: int = 1  # 2 for Heun and the KDPM2s: their N steps take 2 N - 1 timesteps
    step_counts_config: dict[str, Any] = field(default_factory=lambda: LEADING)
    spacing_steps: tuple[int, ...] = (1, 4, 25)
    prediction_types: tuple[str, ...] = ("epsilon", "v_prediction")  # without "sample": it must be refused
    prediction_spacings: tuple[str, ...] = ("leading", "trailing")
    sd21_v: bool = True
    thousand_steps: bool = True
    options: tuple[str, ...] = ("exponential", "beta", "cosine", "linear")  # keys of OPTIONS
    option_steps: tuple[int, ...] = (3, 25)
    second_sigma_spacing: str | None = "use_beta_sigmas"  # refused together with use_karras_sigmas
    swap_sources: tuple[str, ...] = ("EulerDiscreteScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler")


GRIDS = {
    "EulerDiscreteScheduler": Grid(
        step_counts_config=SDXL,
        prediction_types=("epsilon", "v_prediction", "sample", "original_sample"),
        sd21_v=False,
        options=("exponential", "beta", "cosine", "zero-snr-trailing"),
        second_sigma_spacing="use_exponential_sigmas",
        swap_sources=(),  # test_euler.py swaps with SDXL's config
    ),
    "EulerAncestralDiscreteScheduler": Grid(
        options=("cosine", "linear", "zero-snr-trailing", "zero-snr-leading"),
        option_steps=(3, 7, 25),
        second_sigma_spacing=None,
    ),
    "HeunDiscreteScheduler": Grid(stages=2, prediction_types=("epsilon", "v_prediction", "sample")),
    "LMSDiscreteScheduler": Grid(
        prediction_types=("epsilon", "v_prediction", "sample"), thousand_steps=False
    ),
    "KDPM2DiscreteScheduler": Grid(stages=2, spacing_steps=(4, 25), prediction_spacings=("trailing",)),
    "KDPM2AncestralDiscreteScheduler": Grid(
        stages=2,
        spacing_steps=(1, 7, 25),
        prediction_spacings=("trailing",),
        thousand_steps=False,
        options=("exponential", "beta", "linear"),
        option_steps=(7, 25),
    ),
}


def timesteps_taken(name: str, steps: int) -> int:
    """How many timesteps ``steps`` inference steps take (the model is called once at each)."""
    stages = GRIDS[name].stages
    return stages * steps - (stages - 1)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
@pytest.mark.parametrize("name", GRIDS)
def test_step_counts(xp, dtype, steps, name):
    config = GRIDS[name].step_counts_config
    assert parity.run_parity(name, config, steps, dtype=dtype, xp=xp) == timesteps_taken(name, steps)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("name, steps", [(n, s) for n, g in GRIDS.items() for s in g.spacing_steps])
def test_spacings_and_karras(xp, dtype, karras, spacing, name, steps):
    config = dict(SD15, timestep_spacing=spacing, use_karras_sigmas=karras)
    parity.run_parity(name, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, prediction_type, spacing",
    [(n, p, s) for n, g in GRIDS.items() for p in g.prediction_types for s in g.prediction_spacings],
)
def test_prediction_types(xp, dtype, name, prediction_type, spacing):
    config = dict(SD15, prediction_type=prediction_type, timestep_spacing=spacing)
    parity.run_parity(name, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if g.sd21_v])
def test_sd21_v_prediction(xp, dtype, name):
    parity.run_parity(name, SD21_V, 25, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if g.thousand_steps])
def test_1000_steps(xp, name):
    assert parity.run_parity(name, SD15, 1000, xp=xp) == timesteps_taken(name, 1000)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, option, steps",
    [(n, o, s) for n, g in GRIDS.items() for o in g.options for s in g.option_steps],
)
def test_config_options(xp, dtype, name, option, steps):
    parity.run_parity(name, OPTIONS[option], steps, dtype=dtype, xp=xp)


@pytest.mark.parametrize("name", GRIDS)
def test_add_noise_matches_diffusers(name):
    common_checks.check_add_noise(name, SD15)


@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if "sample" not in g.prediction_types])
def test_sample_prediction_refused(name):
    with pytest.raises(NotImplementedError, match="prediction_type"):
        common_checks.ours(name, dict(prediction_type="sample"))


@pytest.mark.parametrize(
    "option, value",
    [("timestep_spacing", "uniform"), ("prediction_type", "flow"), ("beta_schedule", "quadratic")],
)
@pytest.mark.parametrize("name", GRIDS)
def test_bad_option_value(option, value, name):
    with pytest.raises(NotImplementedError, match=option):
        common_checks.ours(name, {option: value})


@pytest.mark.parametrize(
    "name, second", [(n, g.second_sigma_spacing) for n, g in GRIDS.items() if g.second_sigma_spacing]
)
def test_two_sigma_spacings_refused(name, second):
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        common_checks.ours(name, {"use_karras_sigmas": True, second: True})


@pytest.mark.parametrize("name", GRIDS)
def test_step_before_set_timesteps(name):
    common_checks.check_step_before_set_timesteps(name, SD15)


@pytest.mark.parametrize("name", GRIDS)
def test_timestep_not_in_schedule(name):
    common_checks.check_timestep_not_in_schedule(name, SD15)


@pytest.mark.parametrize("name, source", [(n, s) for n, g in GRIDS.items() for s in g.swap_sources])
def test_from_config_swap_keys(name, source):
    common_checks.check_from_config_swap_keys(name, source, LEADING)
