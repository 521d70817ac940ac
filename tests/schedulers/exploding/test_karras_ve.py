"""KarrasVeScheduler (deprecated in diffusers, still shipped) against diffusers: the schedule, and diffusers'
KarrasVePipeline loop (add_noise_to_input, step, step_correct) with the same churn noise."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "KarrasVeScheduler"


def model(x, sigma, lib):
    return parity.fake_model(x, 250.0 * float(sigma), lib)


def run_pipeline_loop(config, steps, *, dtype=np.float64, xp=np):
    x = parity.initial_sample(dtype)
    with parity.injected_noise():
        ref = parity.diffusers_scheduler(NAME, config)
        mine = common_checks.ours(NAME, config)
        ref.set_timesteps(steps)
        mine.set_timesteps(steps)
        np.testing.assert_array_equal(mine.timesteps, ref.timesteps.numpy())
        np.testing.assert_allclose(mine.schedule, ref.schedule.numpy(), rtol=1e-6)
        x_ref = torch.from_numpy(x) * ref.init_noise_sigma
        x_mine = xp.asarray(x) * mine.init_noise_sigma
        generator = parity.noise_generator(parity.SEED + 1, xp)
        for i, (t, t_mine) in enumerate(zip(ref.timesteps, mine.timesteps)):
            x_ref = pipeline_step(ref, t, x_ref, torch, {})
            x_mine = pipeline_step(mine, t_mine, x_mine, xp, {"generator": generator})
            assert x_mine.dtype == dtype
            err = parity.relative_error(x_mine, x_ref.numpy())
            assert err <= parity.TOLERANCE[dtype], f"step {i}: relative error {err:.3g}"


def pipeline_step(scheduler, t, sample, lib, kwargs):
    """One iteration of diffusers' KarrasVePipeline."""
    sigma = scheduler.schedule[t]
    sigma_prev = scheduler.schedule[t - 1] if t > 0 else 0
    sample_hat, sigma_hat = scheduler.add_noise_to_input(sample, sigma, **kwargs)
    model_output = model((sample_hat + 1) / 2, sigma_hat / 2, lib) * (sigma_hat / 2)
    out = scheduler.step(model_output, sigma_hat, sigma_prev, sample_hat)
    if sigma_prev != 0:
        model_output = model((out.prev_sample + 1) / 2, sigma_prev / 2, lib) * (sigma_prev / 2)
        out = scheduler.step_correct(
            model_output, sigma_hat, sigma_prev, sample_hat, out.prev_sample, out["derivative"]
        )
    return out.prev_sample


@XP
@pytest.mark.parametrize("dtype", parity.DTYPES)
@pytest.mark.parametrize(
    "config, steps",
    [
        ({}, 10),
        (dict(s_churn=10, s_min=1.0, s_max=5000.0), 6),
        (dict(sigma_min=0.5, sigma_max=20.0, s_noise=1.0), 15),
    ],
    ids=["default", "churn-everywhere", "small-sigmas"],
)
def test_pipeline_loop(xp, dtype, config, steps):
    with parity.correctly_rounded_sqrt():
        run_pipeline_loop(config, steps, dtype=dtype, xp=xp)


def test_outputs_and_errors():
    mine = common_checks.ours(NAME, {})
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        mine.add_noise_to_input(x, np.float32(1.0))
    mine.set_timesteps(4)
    prev, derivative = mine.step(x, np.float32(2.0), np.float32(1.0), x, return_dict=False)
    out = mine.step(x, np.float32(2.0), np.float32(1.0), x)
    np.testing.assert_array_equal(out[0], prev)
    np.testing.assert_array_equal(out["derivative"], derivative)
    assert out.pred_original_sample is not None
    with pytest.raises(NotImplementedError):
        mine.add_noise(x, x, np.array([1]))
    assert mine and mine.compatibles == [] and mine.order == 2
