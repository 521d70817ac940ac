"""The tests the four alpha-bar schedulers (DDPM, DDIM, PNDM, LCM) share, against diffusers: step counts,
1000 steps, prediction types with spacings, config options and beta schedules, custom timesteps, add_noise and
get_velocity, from_config swaps and errors. Each runs the grid ``GRIDS`` gives its scheduler; what only one
scheduler has is in its own file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.schedulers import parity
from tests.schedulers.common_checks import ours
from tests.schedulers.parity import DTYPES, LCM_SD15, SD15_PIPELINE, SD21_V_PIPELINE, XP

torch = parity.torch
diffusers = parity.diffusers

STEP_COUNTS = (1, 2, 3, 4, 7, 10, 25, 50)
PRK = dict(SD15_PIPELINE, skip_prk_steps=False)  # PNDM with its Runge-Kutta warm-up
CONFIGS = {"default": {}, "sd15": SD15_PIPELINE, "sd21-v": SD21_V_PIPELINE, "prk": PRK, "lcm": LCM_SD15}
TRAINED_BETAS = np.linspace(1e-4, 2e-2, 1000).tolist()
# run at 10 steps in float64
OPTIONS = {
    "default": {},
    "clip-range": dict(clip_sample=True, clip_sample_range=0.5),
    "thresholding": dict(thresholding=True, sample_max_value=1.5, dynamic_thresholding_ratio=0.9),
    "zero-snr": dict(
        SD15_PIPELINE,
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        prediction_type="v_prediction",
    ),
    "alpha-to-one": dict(SD15_PIPELINE, set_alpha_to_one=True),
    "prk-alpha-to-one": dict(PRK, set_alpha_to_one=True),
    "offset-0": dict(SD15_PIPELINE, steps_offset=0),
    "offset-3": dict(steps_offset=3),
    "cosine": dict(beta_schedule="squaredcos_cap_v2"),
    "sigmoid": dict(beta_schedule="sigmoid"),
    "laplace": dict(beta_schedule="laplace"),
    "trained-betas": dict(trained_betas=TRAINED_BETAS),
    # PNDM's default warms up with Runge-Kutta steps; these skip them
    "plms-cosine": dict(beta_schedule="squaredcos_cap_v2", skip_prk_steps=True),
    "plms-trained-betas": dict(trained_betas=TRAINED_BETAS, skip_prk_steps=True),
}


def one_per_step(config: dict[str, Any], steps: int) -> int:
    return steps


def pndm_timesteps_taken(config: dict[str, Any], steps: int) -> int:
    """PLMS takes its second timestep twice; the Runge-Kutta warm-up (PNDM's default) takes 3 steps of 4."""
    if config.get("skip_prk_steps", False):
        return steps + 1 if steps > 1 else 1
    return 12 + steps - 3


@dataclass(frozen=True)
class Grid:
    """What the shared tests run for one scheduler; the defaults are the most common grid."""

    timesteps_taken: Callable[[dict[str, Any], int], int] = one_per_step  # by config and inference steps
    step_counts: tuple[tuple[str, tuple[int, ...]], ...] = (("sd15", STEP_COUNTS),)  # keys of CONFIGS
    thousand_steps: tuple[str, ...] = ("sd15",)  # keys of CONFIGS, both dtypes
    thousand_steps_overrides: dict[str, Any] = field(default_factory=dict)  # on top of each
    prediction_configs: tuple[str, ...] = ("sd15",)  # keys of CONFIGS
    prediction_types: tuple[str, ...] = ("epsilon", "sample", "v_prediction")
    prediction_spacings: tuple[str | None, ...] = ("leading", "trailing", "linspace")  # None: the config's
    prediction_steps: int = 10
    options: tuple[str, ...] = ()  # keys of OPTIONS
    custom_timesteps: tuple[tuple[str, dict[str, Any], int], ...] = ()  # config, set_timesteps kwargs, taken
    add_noise_config: dict[str, Any] = field(default_factory=lambda: SD15_PIPELINE)
    add_noise_timesteps: tuple[int, int] = (10, 900)
    add_noise_dtypes: tuple[type, ...] = (np.float64, np.float32, np.float16)
    get_velocity: bool = True
    bad_options: tuple[tuple[str, Any], ...] = ()  # each refused, by name
    step_before_set_timesteps_refused: bool = True  # DDPM's steps through the training timesteps instead
    swap_config: dict[str, Any] = field(default_factory=lambda: SD15_PIPELINE)
    swap_sources: tuple[str, ...] = ()


GRIDS = {
    "DDPMScheduler": Grid(
        step_counts=(("default", STEP_COUNTS),),
        thousand_steps=("default",),
        options=(
            "clip-range",
            "thresholding",
            "zero-snr",
            "cosine",
            "sigmoid",
            "laplace",
            "trained-betas",
            "offset-3",
        ),
        custom_timesteps=(("sd15", dict(timesteps=[999, 800, 600, 421, 100, 37, 5]), 7),),
        bad_options=(
            ("variance_type", "fixed_medium"),
            ("prediction_type", "score"),
            ("timestep_spacing", "quadratic"),
            ("beta_schedule", "exp"),
        ),
        step_before_set_timesteps_refused=False,
        swap_sources=("PNDMScheduler", "DDIMScheduler", "DDPMScheduler"),
    ),
    "DDIMScheduler": Grid(
        step_counts=(("sd15", STEP_COUNTS), ("sd21-v", STEP_COUNTS)),
        # With steps_offset=1 and leading spacing, 1000 steps would reach timestep 1000: diffusers fails too.
        thousand_steps_overrides=dict(steps_offset=0),
        options=(
            "default",
            "clip-range",
            "thresholding",
            "alpha-to-one",
            "zero-snr",
            "trained-betas",
            "offset-0",
        ),
        add_noise_config=SD21_V_PIPELINE,
        add_noise_timesteps=(0, 999),
        bad_options=(
            ("prediction_type", "score"),
            ("timestep_spacing", "quadratic"),
            ("beta_schedule", "sigmoid"),
        ),
        swap_sources=("PNDMScheduler", "DDPMScheduler", "LCMScheduler"),
    ),
    "PNDMScheduler": Grid(
        timesteps_taken=pndm_timesteps_taken,
        step_counts=(("sd15", STEP_COUNTS), ("prk", (4, 7, 10, 25, 50))),  # the warm-up needs 4 or more
        thousand_steps=("sd15", "prk"),
        thousand_steps_overrides=dict(steps_offset=0),  # as DDIM's
        prediction_configs=("sd15", "prk"),
        prediction_types=("epsilon", "v_prediction"),
        options=(
            "default",
            "alpha-to-one",
            "prk-alpha-to-one",
            "plms-cosine",
            "plms-trained-betas",
            "offset-0",
        ),
        add_noise_timesteps=(1, 981),
        add_noise_dtypes=(np.float32,),
        get_velocity=False,
        bad_options=(
            ("prediction_type", "sample"),
            ("timestep_spacing", "quadratic"),
            ("beta_schedule", "laplace"),
        ),
        swap_sources=("DDIMScheduler", "DDPMScheduler", "LCMScheduler"),
    ),
    "LCMScheduler": Grid(
        step_counts=(("lcm", STEP_COUNTS),),
        thousand_steps=("lcm",),
        thousand_steps_overrides=dict(original_inference_steps=1000),
        prediction_configs=("lcm",),
        prediction_spacings=(None,),
        prediction_steps=4,
        custom_timesteps=(
            ("lcm", dict(timesteps=[999, 759, 499, 259]), 4),
            ("lcm", dict(timesteps=[899, 600, 301, 120, 19], strength=0.6), 3),
        ),
        add_noise_config=LCM_SD15,
        add_noise_timesteps=(259, 999),
        add_noise_dtypes=(np.float32,),
        bad_options=(("prediction_type", "score"), ("beta_schedule", "sigmoid")),
        swap_config=dict(LCM_SD15, skip_prk_steps=True),
        swap_sources=("DDIMScheduler", "PNDMScheduler"),
    ),
}


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, config, steps",
    [(n, c, s) for n, g in GRIDS.items() for c, counts in g.step_counts for s in counts],
)
def test_step_counts(xp, dtype, name, config, steps):
    config = CONFIGS[config]
    n = parity.run_parity(name, config, steps, dtype=dtype, xp=xp)
    assert n == GRIDS[name].timesteps_taken(config, steps)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, config", [(n, c) for n, g in GRIDS.items() for c in g.thousand_steps])
def test_1000_steps(xp, dtype, name, config):
    grid = GRIDS[name]
    config = dict(CONFIGS[config], **grid.thousand_steps_overrides)
    assert parity.run_parity(name, config, 1000, dtype=dtype, xp=xp) == grid.timesteps_taken(config, 1000)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, config, prediction_type, spacing",
    [
        (n, c, p, s)
        for n, g in GRIDS.items()
        for c in g.prediction_configs
        for p in g.prediction_types
        for s in g.prediction_spacings
    ],
)
def test_prediction_types_and_spacings(xp, dtype, name, config, prediction_type, spacing):
    config = dict(CONFIGS[config], prediction_type=prediction_type)
    if spacing is not None:
        config["timestep_spacing"] = spacing
    parity.run_parity(name, config, GRIDS[name].prediction_steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("name, option", [(n, o) for n, g in GRIDS.items() for o in g.options])
def test_config_options(xp, name, option):
    parity.run_parity(name, OPTIONS[option], 10, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, config, kwargs, taken", [(n, *custom) for n, g in GRIDS.items() for custom in g.custom_timesteps]
)
def test_custom_timesteps(xp, dtype, name, config, kwargs, taken):
    n = parity.run_parity(name, CONFIGS[config], None, dtype=dtype, xp=xp, set_timesteps_kwargs=kwargs)
    assert n == taken


@pytest.mark.parametrize("name, dtype", [(n, d) for n, g in GRIDS.items() for d in g.add_noise_dtypes])
def test_add_noise_and_get_velocity(name, dtype):
    grid = GRIDS[name]
    ref = getattr(diffusers, name).from_config(grid.add_noise_config)
    mine = ours(name, grid.add_noise_config)
    x0 = parity.initial_sample(dtype)
    noise = np.random.default_rng(7).standard_normal(x0.shape).astype(dtype)
    timesteps = np.array(grid.add_noise_timesteps)
    args_ref = (torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(timesteps))
    for method in ("add_noise", "get_velocity") if grid.get_velocity else ("add_noise",):
        expected = getattr(ref, method)(*args_ref).numpy()
        actual = getattr(mine, method)(x0, noise, timesteps)
        assert actual.dtype == dtype
        np.testing.assert_allclose(actual, expected, rtol=1e-3 if dtype == np.float16 else 1e-6, atol=1e-6)


@pytest.mark.parametrize("name, source", [(n, s) for n, g in GRIDS.items() for s in g.swap_sources])
def test_from_config_swap_keeps_diffusers_keys(name, source):
    from sdrt.schedulers import get_scheduler_class

    config = GRIDS[name].swap_config
    ref_source = getattr(diffusers, source).from_config(config)
    ours_source = get_scheduler_class(source).from_config(config)
    expected = getattr(diffusers, name).from_config(ref_source.config).config
    swapped = ours(name, ours_source.config)
    assert type(swapped).__name__ == name
    assert set(swapped.config) == set(expected)
    for key in expected:
        if not key.startswith("_"):
            assert swapped.config[key] == expected[key], key


@pytest.mark.parametrize(
    "name, option, value", [(n, *bad) for n, g in GRIDS.items() for bad in g.bad_options]
)
def test_bad_option_values_name_the_option(name, option, value):
    from sdrt.schedulers import get_scheduler_class

    with pytest.raises(NotImplementedError, match=option):
        get_scheduler_class(name)(**{option: value})


@pytest.mark.parametrize("name", [n for n, g in GRIDS.items() if g.step_before_set_timesteps_refused])
def test_step_before_set_timesteps(name):
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours(name, {}).step(x, 999, x)
