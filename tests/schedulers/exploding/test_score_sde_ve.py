"""ScoreSdeVeScheduler against diffusers: the sigmas, and diffusers' ScoreSdeVePipeline loop (step_correct, then
step_pred) with the same noise, with several step counts and configs; add_noise and the outputs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "ScoreSdeVeScheduler"


def fake_score(x, sigma, lib):
    """A score-like stand-in for the model: about -x / sigma^2, as for data of unit scale."""
    return -(x - 0.3 * lib.tanh(x)) / (sigma**2 + 1.0)


def run_pipeline_loop(config, steps, *, dtype=np.float64, xp=np):
    x = parity.initial_sample(dtype)
    with parity.injected_noise():
        ref = parity.diffusers_scheduler(NAME, config)
        mine = common_checks.ours(NAME, config)
        for scheduler in (ref, mine):
            scheduler.set_timesteps(steps)
            scheduler.set_sigmas(steps)
        np.testing.assert_allclose(mine.timesteps, ref.timesteps.numpy(), rtol=1e-7)
        np.testing.assert_allclose(mine.sigmas, ref.sigmas.numpy(), rtol=1e-6)
        np.testing.assert_allclose(mine.discrete_sigmas, ref.discrete_sigmas.numpy(), rtol=1e-6)
        x_ref = torch.from_numpy(x) * ref.init_noise_sigma
        x_mine = xp.asarray(x) * mine.init_noise_sigma
        generator = parity.noise_generator(parity.SEED + 1, xp)
        for i, (t_ref, t_mine) in enumerate(zip(ref.timesteps, mine.timesteps)):
            sigma = float(ref.sigmas[i])
            for _ in range(mine.config.correct_steps):
                x_ref = ref.step_correct(fake_score(x_ref, sigma, torch), x_ref).prev_sample
                x_mine = mine.step_correct(
                    fake_score(x_mine, sigma, xp), x_mine, generator=generator
                ).prev_sample
            out_ref = ref.step_pred(fake_score(x_ref, sigma, torch), t_ref, x_ref)
            out_mine = mine.step_pred(fake_score(x_mine, sigma, xp), t_mine, x_mine, generator=generator)
            x_ref, x_mine = out_ref.prev_sample, out_mine.prev_sample
            assert x_mine.dtype == dtype
            for got, expected in ((x_mine, x_ref), (out_mine.prev_sample_mean, out_ref.prev_sample_mean)):
                err = parity.relative_error(got, expected.numpy())
                assert err <= parity.TOLERANCE[dtype], f"step {i}: relative error {err:.3g}"


@XP
@pytest.mark.parametrize("dtype", parity.DTYPES)
@pytest.mark.parametrize(
    "config, steps",
    [
        ({}, 10),
        (dict(correct_steps=2, snr=0.16), 7),
        (dict(sigma_min=0.02, sigma_max=50.0, sampling_eps=1e-3, correct_steps=0), 25),
    ],
    ids=["default", "two-corrections", "small-sigmas"],
)
def test_pipeline_loop(xp, dtype, config, steps):
    with parity.correctly_rounded_sqrt():
        run_pipeline_loop(config, steps, dtype=dtype, xp=xp)


def test_training_sigmas_and_add_noise():
    ref, mine = diffusers.ScoreSdeVeScheduler(), common_checks.ours(NAME, {})
    np.testing.assert_allclose(mine.sigmas, ref.sigmas.numpy(), rtol=1e-6)
    np.testing.assert_allclose(mine.discrete_sigmas, ref.discrete_sigmas.numpy(), rtol=1e-6)
    x0 = parity.initial_sample()
    noise = np.random.default_rng(7).standard_normal(x0.shape)
    indices = np.array([5, 1500])
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(indices)).numpy()
    assert parity.relative_error(mine.add_noise(x0, noise, indices), expected) <= 1e-7
    assert len(mine) == 2000 and mine.compatibles == []


def test_tuple_outputs():
    mine = common_checks.ours(NAME, {})
    mine.set_timesteps(5)
    mine.set_sigmas(5)
    x = parity.initial_sample()
    prev_sample, mean = mine.step_pred(
        x, mine.timesteps[1], x, generator=np.random.default_rng(0), return_dict=False
    )
    assert prev_sample.shape == mean.shape == x.shape
    (corrected,) = mine.step_correct(x, x, generator=np.random.default_rng(0), return_dict=False)
    assert corrected.shape == x.shape
