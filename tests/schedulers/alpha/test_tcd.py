"""TCDScheduler against diffusers: gamma (eta) 0, 0.3 and 1, step counts, strength (img2img), custom timesteps,
the options, the noised-sample output, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import LCM_SD15, XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "TCDScheduler"
# The TCD-distilled SD 1.5 / SDXL LoRAs run with LCM's scheduler config.
TCD_SD15 = LCM_SD15


def ours(config):
    return common_checks.ours(NAME, config)


@XP
@pytest.mark.parametrize("dtype", parity.DTYPES)
@pytest.mark.parametrize(
    "eta, steps, kwargs",
    [
        (0.0, 4, {}),
        (0.3, 4, {}),
        (1.0, 4, {}),
        (0.3, 1, {}),
        (0.5, 8, {}),
        (0.3, 4, dict(strength=0.6)),
        (0.7, 6, dict(original_inference_steps=100)),
        (0.3, 3, dict(original_inference_steps=40, strength=0.5)),
    ],
    ids=[
        "eta-0",
        "eta-0.3",
        "eta-1",
        "one-step",
        "eta-0.5-8",
        "strength",
        "original-kwarg",
        "original-strength",
    ],
)
def test_parity(xp, dtype, eta, steps, kwargs):
    with parity.correctly_rounded_sqrt():
        parity.run_parity(
            NAME, TCD_SD15, steps, dtype=dtype, xp=xp, set_timesteps_kwargs=kwargs, step_kwargs=dict(eta=eta)
        )


@XP
@pytest.mark.parametrize(
    "config",
    [
        dict(TCD_SD15, original_inference_steps=100),
        dict(TCD_SD15, set_alpha_to_one=False),
        dict(TCD_SD15, prediction_type="sample"),
        dict(TCD_SD15, rescale_betas_zero_snr=True, prediction_type="v_prediction"),
        dict(TCD_SD15, beta_schedule="linear", beta_start=1e-4, beta_end=0.02),
        dict(TCD_SD15, clip_sample=True, thresholding=True),  # not read by diffusers' step either
    ],
    ids=["original-100", "alpha-not-one", "sample", "zero-snr-v", "linear", "clip-ignored"],
)
def test_config_options(xp, config):
    with parity.correctly_rounded_sqrt():
        parity.run_parity(NAME, config, 5, xp=xp, step_kwargs=dict(eta=0.3))


def test_custom_timesteps_with_strength():
    kwargs = dict(timesteps=[999, 759, 499, 259, 99], strength=0.6)
    parity.run_parity(NAME, TCD_SD15, None, set_timesteps_kwargs=kwargs, step_kwargs=dict(eta=0.3))


def test_intermediate_timestep_is_diffusers_float32_floor():
    from sdrt.schedulers.alpha.tcd import intermediate_timestep

    for eta in (0.1, 0.3, 0.35, 0.7, 0.8, 0.9):
        ref = torch.floor((1 - eta) * torch.arange(1000)).long().tolist()
        assert [intermediate_timestep(t, eta) for t in range(1000)] == ref


def test_pred_noised_sample_and_tuple_output():
    x = parity.initial_sample()
    model_output = parity.fake_model(x, 999.0, np)
    ref = diffusers.TCDScheduler.from_config(TCD_SD15)
    mine = ours(TCD_SD15)
    ref.set_timesteps(4)
    mine.set_timesteps(4)
    with parity.injected_noise():
        expected = ref.step(torch.from_numpy(model_output), ref.timesteps[0], torch.from_numpy(x), eta=0.3)
    prev_sample, noised = mine.step(
        model_output,
        mine.timesteps[0],
        x,
        eta=0.3,
        generator=np.random.default_rng(parity.SEED + 1),
        return_dict=False,
    )
    assert parity.relative_error(noised, expected.pred_noised_sample.numpy()) <= 1e-6
    assert parity.relative_error(prev_sample, expected.prev_sample.numpy()) <= 1e-6
    assert mine.step_index == 1


@pytest.mark.parametrize("eta", [-0.1, 1.5])
def test_eta_outside_unit_interval(eta):
    scheduler = ours(TCD_SD15)
    scheduler.set_timesteps(4)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match=r"eta=.*gamma.*\[0, 1\].*pass eta between 0 and 1"):
        scheduler.step(x, scheduler.timesteps[0], x, eta=eta)


def test_set_timesteps_errors():
    scheduler = ours(TCD_SD15)
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.set_timesteps()
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.set_timesteps(4, timesteps=[999, 499])
    with pytest.raises(ValueError, match="original_inference_steps"):
        scheduler.set_timesteps(51)
    with pytest.raises(ValueError, match="strength"):
        scheduler.set_timesteps(30, strength=0.5)
    with pytest.raises(ValueError, match="descending"):
        scheduler.set_timesteps(timesteps=[499, 999])
    with pytest.raises(ValueError, match="num_train_timesteps"):
        ours(dict(TCD_SD15, original_inference_steps=2000)).set_timesteps(4)


def test_previous_timestep_add_noise_and_swaps():
    ref = diffusers.TCDScheduler.from_config(TCD_SD15)
    mine = ours(TCD_SD15)
    ref.set_timesteps(4)
    mine.set_timesteps(4)
    for t in mine.timesteps:
        assert mine.previous_timestep(t) == int(ref.previous_timestep(torch.tensor(t)))
    common_checks.check_add_noise(NAME, TCD_SD15)
    common_checks.check_step_before_set_timesteps(NAME, TCD_SD15)
    common_checks.check_from_config_swap_keys(NAME, "LCMScheduler", TCD_SD15)
    assert mine.compatibles == []
