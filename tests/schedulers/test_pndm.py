"""PNDMScheduler against diffusers: PLMS with and without the Runge-Kutta warm-up."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "PNDMScheduler"
SD15 = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    clip_sample=False,
)
PRK = dict(SD15, skip_prk_steps=False)
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours_class():
    from sdrt.schedulers import PNDMScheduler

    return PNDMScheduler


def expected_length(steps: int, skip_prk_steps: bool) -> int:
    if skip_prk_steps:
        return steps + 1 if steps > 1 else 1
    return 12 + steps - 3


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_sd15_step_counts(xp, dtype, steps):
    assert parity.run_parity(NAME, SD15, steps, dtype=dtype, xp=xp) == expected_length(steps, True)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [4, 7, 10, 25, 50])
def test_prk_warm_up_step_counts(xp, dtype, steps):
    assert parity.run_parity(NAME, PRK, steps, dtype=dtype, xp=xp) == expected_length(steps, False)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", [SD15, PRK], ids=["plms", "prk"])
def test_1000_steps(xp, dtype, config):
    """steps_offset=0: with SD1.5's offset of 1, 1000 leading steps reach timestep 1000 (diffusers fails too)."""
    parity.run_parity(NAME, dict(config, steps_offset=0), 1000, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("skip_prk_steps", [True, False])
def test_prediction_types_and_spacings(xp, dtype, prediction_type, spacing, skip_prk_steps):
    config = dict(
        SD15, prediction_type=prediction_type, timestep_spacing=spacing, skip_prk_steps=skip_prk_steps
    )
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize(
    "config",
    [
        {},
        dict(SD15, set_alpha_to_one=True),
        dict(PRK, set_alpha_to_one=True),
        dict(beta_schedule="squaredcos_cap_v2", skip_prk_steps=True),
        dict(trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist(), skip_prk_steps=True),
        dict(SD15, steps_offset=0),
    ],
    ids=["default-prk", "alpha-to-one", "prk-alpha-to-one", "cosine", "trained-betas", "offset-0"],
)
def test_config_options(xp, config):
    parity.run_parity(NAME, config, 10, xp=xp)


@pytest.mark.parametrize("skip_prk_steps", [True, False])
@pytest.mark.parametrize("steps", [4, 10])
def test_timestep_layout(skip_prk_steps, steps):
    ref = diffusers.PNDMScheduler.from_config(dict(SD15, skip_prk_steps=skip_prk_steps))
    ours = ours_class().from_config(dict(SD15, skip_prk_steps=skip_prk_steps))
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    assert ours.timesteps.dtype == np.int64
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    np.testing.assert_array_equal(ours.prk_timesteps, ref.prk_timesteps)
    np.testing.assert_array_equal(ours.plms_timesteps, ref.plms_timesteps)


def test_set_timesteps_resets_history():
    scheduler = ours_class().from_config(SD15)
    x = parity.initial_sample()
    for steps in (5, 5):
        scheduler.set_timesteps(steps)
        outputs = [scheduler.step(x, t, x).prev_sample for t in scheduler.timesteps]
    scheduler.set_timesteps(5)
    again = [scheduler.step(x, t, x).prev_sample for t in scheduler.timesteps]
    for a, b in zip(outputs, again):
        np.testing.assert_array_equal(a, b)


def test_add_noise():
    ref = diffusers.PNDMScheduler.from_config(SD15)
    ours = ours_class().from_config(SD15)
    x0 = parity.initial_sample(np.float32)
    noise = np.random.default_rng(7).standard_normal(x0.shape).astype(np.float32)
    timesteps = np.array([1, 981])
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(timesteps))
    np.testing.assert_allclose(ours.add_noise(x0, noise, timesteps), expected.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "option, value",
    [("prediction_type", "sample"), ("timestep_spacing", "quadratic"), ("beta_schedule", "laplace")],
)
def test_bad_option_values_name_the_option(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours_class()(**{option: value})


def test_step_before_set_timesteps():
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours_class()().step(x, 999, x)


def test_timestep_outside_training_range():
    scheduler = ours_class().from_config(SD15)
    scheduler.set_timesteps(1000)  # leading spacing with steps_offset=1 reaches 1000
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="outside the training timesteps"):
        scheduler.step(x, scheduler.timesteps[0], x)


def test_prk_needs_four_steps():
    with pytest.raises(ValueError, match="skip_prk_steps"):
        ours_class().from_config(PRK).set_timesteps(3)


@pytest.mark.parametrize("source", ["DDIMScheduler", "DDPMScheduler", "LCMScheduler"])
def test_from_config_swap_keeps_diffusers_keys(source):
    from sdrt.schedulers import get_scheduler_class

    ref_source = getattr(diffusers, source).from_config(SD15)
    ours_source = get_scheduler_class(source).from_config(SD15)
    expected = diffusers.PNDMScheduler.from_config(ref_source.config).config
    swapped = ours_class().from_config(ours_source.config)
    assert set(swapped.config) == set(expected)
    for key in expected:
        if not key.startswith("_"):
            assert swapped.config[key] == expected[key], key
