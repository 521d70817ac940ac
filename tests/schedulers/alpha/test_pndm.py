"""PNDMScheduler's own cases against diffusers (its shared grids, with and without the Runge-Kutta warm-up, are in
test_alpha_schedulers.py): the timestep layout, the history set_timesteps resets and its extra errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import SD15_PIPELINE

diffusers = parity.diffusers

NAME = "PNDMScheduler"


def ours(config):
    return common_checks.ours(NAME, config)


@pytest.mark.parametrize("skip_prk_steps", [True, False])
@pytest.mark.parametrize("steps", [4, 10])
def test_timestep_layout(skip_prk_steps, steps):
    ref = diffusers.PNDMScheduler.from_config(dict(SD15_PIPELINE, skip_prk_steps=skip_prk_steps))
    mine = ours(dict(SD15_PIPELINE, skip_prk_steps=skip_prk_steps))
    ref.set_timesteps(steps)
    mine.set_timesteps(steps)
    assert mine.timesteps.dtype == np.int64
    np.testing.assert_array_equal(mine.timesteps, ref.timesteps.numpy())
    np.testing.assert_array_equal(mine.prk_timesteps, ref.prk_timesteps)
    np.testing.assert_array_equal(mine.plms_timesteps, ref.plms_timesteps)


def test_set_timesteps_resets_history():
    scheduler = ours(SD15_PIPELINE)
    x = parity.initial_sample()
    for steps in (5, 5):
        scheduler.set_timesteps(steps)
        outputs = [scheduler.step(x, t, x).prev_sample for t in scheduler.timesteps]
    scheduler.set_timesteps(5)
    again = [scheduler.step(x, t, x).prev_sample for t in scheduler.timesteps]
    for a, b in zip(outputs, again):
        np.testing.assert_array_equal(a, b)


def test_timestep_outside_training_range():
    scheduler = ours(SD15_PIPELINE)
    scheduler.set_timesteps(1000)  # leading spacing with steps_offset=1 reaches 1000
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="outside the training timesteps"):
        scheduler.step(x, scheduler.timesteps[0], x)


def test_prk_needs_four_steps():
    with pytest.raises(ValueError, match="skip_prk_steps"):
        ours(dict(SD15_PIPELINE, skip_prk_steps=False)).set_timesteps(3)
