"""HeunDiscreteScheduler's own cases against diffusers (its shared grids are in test_sigma_schedulers.py):
clipping, the "exp" beta schedule and custom timesteps."""

from __future__ import annotations

import pytest

from tests.schedulers import parity
from tests.schedulers.parity import DTYPES, SD15, XP

NAME = "HeunDiscreteScheduler"


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        dict(SD15, clip_sample=True, clip_sample_range=0.8, prediction_type="sample"),
        dict(SD15, clip_sample=True, clip_sample_range=1.5),
        dict(beta_schedule="exp"),
    ],
    ids=["clip-sample-pred", "clip-eps", "exp"],
)
@pytest.mark.parametrize("steps", [3, 25])
def test_config_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
def test_custom_timesteps(xp):
    timesteps = [999.0, 800.0, 601.0, 400.0, 200.0, 50.0]
    parity.run_parity(NAME, SD15, None, xp=xp, set_timesteps_kwargs=dict(timesteps=timesteps))
