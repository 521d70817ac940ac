"""CMStochasticIterativeScheduler against diffusers: step by step (scale_model_input, step with the same noise) with
step counts, custom timesteps and configs; sigma_to_t, add_noise and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "CMStochasticIterativeScheduler"


@XP
@pytest.mark.parametrize("dtype", parity.DTYPES)
@pytest.mark.parametrize(
    "config, steps, kwargs",
    [
        ({}, 4, {}),
        ({}, 1, {}),
        ({}, 40, {}),
        ({}, None, dict(timesteps=[22, 0])),  # the openai/diffusers-cd_imagenet64_l2 setting
        ({}, None, dict(timesteps=[39, 17, 5])),
        (dict(num_train_timesteps=151, clip_denoised=False, s_noise=0.9, rho=5.0, sigma_data=0.7), 6, {}),
    ],
    ids=["4-steps", "one-step", "all-40", "custom-22-0", "custom-3", "options"],
)
def test_parity(xp, dtype, config, steps, kwargs):
    with parity.correctly_rounded_sqrt():
        parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp, set_timesteps_kwargs=kwargs)


def test_training_schedule_sigma_to_t_and_add_noise():
    ref, mine = diffusers.CMStochasticIterativeScheduler(), common_checks.ours(NAME, {})
    np.testing.assert_allclose(mine.sigmas, ref.sigmas.numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.timesteps, ref.timesteps.numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.sigma_to_t(0.5), ref.sigma_to_t(0.5), rtol=1e-12)
    common_checks.check_add_noise(NAME, {})
    c_ref, c_mine = ref.get_scalings(torch.tensor(3.0)), mine.get_scalings(np.float32(3.0))
    np.testing.assert_allclose([float(c) for c in c_mine], [float(c) for c in c_ref], rtol=1e-7)


def test_errors_and_outputs():
    mine = common_checks.ours(NAME, {})
    mine.set_timesteps(3)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="step index"):
        mine.step(x, 0, x)
    with pytest.raises(ValueError, match="exactly one"):
        mine.set_timesteps()
    with pytest.raises(ValueError, match="descending"):
        mine.set_timesteps(timesteps=[0, 22])
    with pytest.raises(ValueError, match="num_train_timesteps"):
        mine.set_timesteps(41)
    t = mine.timesteps[0]
    (prev,) = mine.step(
        x, t, mine.scale_model_input(x, t), generator=np.random.default_rng(0), return_dict=False
    )
    assert prev.shape == x.shape and mine.step_index == 1
    assert mine.compatibles == []
