"""RePaintScheduler against diffusers: the resampling schedule, the inpainting loop of diffusers' RePaintPipeline
(step with original_image and mask, undo_step on the way back up) with eta 0 and 1, the beta schedules, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "RePaintScheduler"


def inputs(dtype):
    x = parity.initial_sample(dtype)
    original = np.tanh(np.random.default_rng(3).standard_normal(x.shape)).astype(dtype)
    mask = np.zeros(x.shape, dtype)
    mask[..., :4] = 1.0  # the left half is known
    return x, original, mask


def run_repaint(config, steps, jump_length, jump_n_sample, *, dtype=np.float64, xp=np):
    """diffusers' RePaintPipeline loop, both sides with the same noise; compare at every step and undo."""
    x, original, mask = inputs(dtype)
    with parity.injected_noise():
        ref = parity.diffusers_scheduler(NAME, config)
        mine = common_checks.ours(NAME, config)
        ref.set_timesteps(steps, jump_length, jump_n_sample)
        mine.set_timesteps(steps, jump_length, jump_n_sample)
        np.testing.assert_array_equal(mine.timesteps, ref.timesteps.numpy())
        generator = parity.noise_generator(parity.SEED + 1, xp)
        x_ref, x_mine = torch.from_numpy(x), xp.asarray(x)
        original_ref, mask_ref = torch.from_numpy(original), torch.from_numpy(mask)
        original_mine, mask_mine = xp.asarray(original), xp.asarray(mask)
        t_last = ref.timesteps[0] + 1
        for i, (t, t_mine) in enumerate(zip(ref.timesteps, mine.timesteps)):
            if t < t_last:
                m_ref = parity.fake_model(x_ref, float(t), torch)
                m_mine = parity.fake_model(x_mine, float(t_mine), xp)
                x_ref = ref.step(m_ref, t, x_ref, original_ref, mask_ref).prev_sample
                x_mine = mine.step(
                    m_mine, t_mine, x_mine, original_mine, mask_mine, generator=generator
                ).prev_sample
            else:
                x_ref = ref.undo_step(x_ref, t_last)
                x_mine = mine.undo_step(x_mine, int(t_last), generator=generator)
            t_last = t
            assert x_mine.dtype == dtype
            err = parity.relative_error(x_mine, x_ref.numpy())
            assert err <= parity.TOLERANCE[dtype], f"step {i} (t={int(t)}): relative error {err:.3g}"
    return len(ref.timesteps)


@XP
@pytest.mark.parametrize("dtype", parity.DTYPES)
@pytest.mark.parametrize(
    "config, steps, jump_length, jump_n_sample",
    [
        ({}, 20, 5, 3),
        (dict(eta=1.0), 20, 5, 3),
        (dict(eta=0.5, clip_sample=False), 25, 10, 2),
        (dict(beta_schedule="sigmoid"), 12, 3, 2),
        (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, eta=1.0), 10, 10, 10),
    ],
    ids=["eta-0", "eta-1", "eta-half-no-clip", "sigmoid", "scaled-linear-no-jump"],
)
def test_inpainting_loop(xp, dtype, config, steps, jump_length, jump_n_sample):
    with parity.correctly_rounded_sqrt():
        assert run_repaint(config, steps, jump_length, jump_n_sample, dtype=dtype, xp=xp) >= steps


def test_schedules():
    for steps, jump_length, jump_n_sample in [(250, 10, 10), (50, 7, 4), (5000, 10, 1), (3, 10, 10)]:
        ref, mine = diffusers.RePaintScheduler(), common_checks.ours(NAME, {})
        ref.set_timesteps(steps, jump_length, jump_n_sample)
        mine.set_timesteps(steps, jump_length, jump_n_sample)
        np.testing.assert_array_equal(mine.timesteps, ref.timesteps.numpy())
        assert mine.num_inference_steps == ref.num_inference_steps
    for schedule in ("sigmoid", "squaredcos_cap_v2"):
        ref, mine = (
            diffusers.RePaintScheduler(beta_schedule=schedule),
            common_checks.ours(NAME, {"beta_schedule": schedule}),
        )
        np.testing.assert_allclose(mine.betas, ref.betas.numpy(), rtol=1e-6)
        np.testing.assert_allclose(mine.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=1e-6)


def test_tuple_output_and_named_fields():
    x, original, mask = inputs(np.float64)
    mine = common_checks.ours(NAME, {})
    mine.set_timesteps(10)
    out = mine.step(x, mine.timesteps[0], x, original, mask, generator=np.random.default_rng(0))
    assert out[0] is out["prev_sample"] and out[1] is out.pred_original_sample
    prev, x0 = mine.step(
        x, mine.timesteps[0], x, original, mask, generator=np.random.default_rng(0), return_dict=False
    )
    np.testing.assert_array_equal(prev, out.prev_sample)


def test_errors():
    mine = common_checks.ours(NAME, {})
    x, original, mask = inputs(np.float64)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        mine.step(x, 999, x, original, mask)
    with pytest.raises(NotImplementedError, match="DDPMScheduler.add_noise"):
        mine.add_noise(x, x, np.array([10]))
    with pytest.raises(NotImplementedError, match="beta_schedule"):
        common_checks.ours(NAME, {"beta_schedule": "cubic"})
    assert mine.compatibles == []
