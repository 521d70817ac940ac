"""DDIMScheduler's own cases against diffusers (its shared grids are in test_alpha_schedulers.py): 1000
v-prediction steps, stochastic eta, clipped model output, given variance noise, float16 samples and its extra
error."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DTYPES, SD15_PIPELINE, SD21_V_PIPELINE, XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "DDIMScheduler"
SD21_V_TRAILING = dict(SD21_V_PIPELINE, timestep_spacing="trailing")


def ours(config):
    return common_checks.ours(NAME, config)


@XP
def test_1000_steps_sd21_v_prediction_float32(xp):
    assert parity.run_parity(NAME, SD21_V_TRAILING, 1000, dtype=np.float32, xp=xp) == 1000


@XP
def test_1000_steps_sd21_v_prediction_float64_same_math(xp, monkeypatch):
    """diffusers computes DDIM's coefficients from 0-d float32 tensors, and torch's float32 square roots
    are not all correctly rounded: over a 1000-step v-prediction loop that alone drifts by ~1.2e-5
    (float64). With it removed the two loops agree to ~1e-14, which this test asserts."""
    monkeypatch.setitem(parity.TOLERANCE, np.float64, 1e-12)
    with parity.correctly_rounded_sqrt():
        assert parity.run_parity(NAME, SD21_V_TRAILING, 1000, dtype=np.float64, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eta", [0.5, 1.0])
@pytest.mark.parametrize("config", [SD15_PIPELINE, SD21_V_PIPELINE], ids=["sd15", "sd21-v"])
def test_stochastic_eta(xp, dtype, eta, config):
    parity.run_parity(NAME, config, 25, dtype=dtype, xp=xp, step_kwargs=dict(eta=eta))


@XP
@pytest.mark.parametrize(
    "config, step_kwargs",
    [
        (dict(clip_sample=True, clip_sample_range=0.5), dict(use_clipped_model_output=True, eta=0.5)),
        (dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample"), dict(eta=1.0)),
    ],
    ids=["clipped-model-output", "cosine-sample"],
)
def test_options_with_eta(xp, config, step_kwargs):
    parity.run_parity(NAME, config, 10, xp=xp, step_kwargs=step_kwargs)


def test_given_variance_noise_is_used():
    x = parity.initial_sample()
    noise = np.random.default_rng(3).standard_normal(x.shape)
    ref = diffusers.DDIMScheduler.from_config(SD15_PIPELINE)
    mine = ours(SD15_PIPELINE)
    ref.set_timesteps(10)
    mine.set_timesteps(10)
    t = int(mine.timesteps[2])
    expected = ref.step(
        torch.from_numpy(x), t, torch.from_numpy(x), eta=1.0, variance_noise=torch.from_numpy(noise)
    ).prev_sample.numpy()
    actual = mine.step(x, t, x, eta=1.0, variance_noise=noise).prev_sample
    assert parity.relative_error(actual, expected) <= 1e-6
    with pytest.raises(ValueError, match="not both"):
        mine.step(x, t, x, eta=1.0, variance_noise=noise, generator=np.random.default_rng(0))


def test_keeps_float16():
    scheduler = ours(SD15_PIPELINE)
    scheduler.set_timesteps(5)
    x = parity.initial_sample(np.float16)
    out = scheduler.step(x, scheduler.timesteps[0], x, eta=0.5, generator=np.random.default_rng(0))
    assert out.prev_sample.dtype == np.float16 and out.pred_original_sample.dtype == np.float16


def test_timestep_outside_training_range():
    scheduler = ours({})
    scheduler.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="outside the training timesteps"):
        scheduler.step(x, 1000, x)
