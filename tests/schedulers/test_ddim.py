"""DDIMScheduler against diffusers: eta, clipping, thresholding, spacings, prediction types."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "DDIMScheduler"
SD15 = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    clip_sample=False,
)
SD21_V = dict(SD15, prediction_type="v_prediction", timestep_spacing="leading")
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours_class():
    from sdrt.schedulers import DDIMScheduler

    return DDIMScheduler


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
@pytest.mark.parametrize("config", [SD15, SD21_V], ids=["sd15", "sd21-v"])
def test_sd_configs_step_counts(xp, dtype, steps, config):
    assert parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp) == steps


@contextlib.contextmanager
def correctly_rounded_scalar_sqrt():
    """Make torch's 0-d float32 ``x ** 0.5`` the correctly rounded square root, as NumPy's is.

    diffusers computes DDIM's coefficients from 0-d float32 tensors, and this machine's torch CPU
    build rounds about one float32 square root in five to the neighbouring value (1 ulp). Over a
    1000-step v-prediction loop that alone drifts by ~1.2e-5 (float64); with it removed the two
    loops agree to ~1e-14, which this test asserts.
    """
    pow_ = torch.Tensor.__pow__

    def exact_pow(self, exponent):
        if self.dim() == 0 and self.dtype == torch.float32 and exponent == 0.5:
            return torch.tensor(np.sqrt(np.float32(self.item())))
        return pow_(self, exponent)

    torch.Tensor.__pow__ = exact_pow
    try:
        yield
    finally:
        torch.Tensor.__pow__ = pow_


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_1000_steps_sd15(xp, dtype):
    """(With steps_offset=1 and leading spacing, 1000 steps would reach timestep 1000: diffusers fails too.)"""
    assert parity.run_parity(NAME, dict(SD15, steps_offset=0), 1000, dtype=dtype, xp=xp) == 1000


@XP
def test_1000_steps_sd21_v_prediction_float32(xp):
    config = dict(SD21_V, timestep_spacing="trailing")
    assert parity.run_parity(NAME, config, 1000, dtype=np.float32, xp=xp) == 1000


@XP
def test_1000_steps_sd21_v_prediction_float64_same_math(xp, monkeypatch):
    config = dict(SD21_V, timestep_spacing="trailing")
    monkeypatch.setitem(parity.TOLERANCE, np.float64, 1e-12)
    with correctly_rounded_scalar_sqrt():
        assert parity.run_parity(NAME, config, 1000, dtype=np.float64, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eta", [0.5, 1.0])
@pytest.mark.parametrize("config", [SD15, SD21_V], ids=["sd15", "sd21-v"])
def test_stochastic_eta(xp, dtype, eta, config):
    parity.run_parity(NAME, config, 25, dtype=dtype, xp=xp, step_kwargs=dict(eta=eta))


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_prediction_types_and_spacings(xp, dtype, prediction_type, spacing):
    config = dict(SD15, prediction_type=prediction_type, timestep_spacing=spacing)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize(
    "config, step_kwargs",
    [
        ({}, {}),
        (dict(clip_sample=True, clip_sample_range=0.5), {}),
        (dict(clip_sample=True, clip_sample_range=0.5), dict(use_clipped_model_output=True, eta=0.5)),
        (dict(thresholding=True, sample_max_value=1.5, dynamic_thresholding_ratio=0.9), {}),
        (dict(SD15, set_alpha_to_one=True), {}),
        (dict(SD21_V, rescale_betas_zero_snr=True, timestep_spacing="trailing"), {}),
        (dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample"), dict(eta=1.0)),
        (dict(trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()), {}),
        (dict(SD15, steps_offset=0), {}),
    ],
    ids=[
        "default",
        "clip-range",
        "clipped-model-output",
        "thresholding",
        "alpha-to-one",
        "zero-snr",
        "cosine",
        "trained-betas",
        "offset-0",
    ],
)
def test_config_options(xp, config, step_kwargs):
    parity.run_parity(NAME, config, 10, xp=xp, step_kwargs=step_kwargs)


def test_given_variance_noise_is_used():
    x = parity.initial_sample()
    noise = np.random.default_rng(3).standard_normal(x.shape)
    ref = diffusers.DDIMScheduler.from_config(SD15)
    ours = ours_class().from_config(SD15)
    ref.set_timesteps(10)
    ours.set_timesteps(10)
    t = int(ours.timesteps[2])
    expected = ref.step(
        torch.from_numpy(x), t, torch.from_numpy(x), eta=1.0, variance_noise=torch.from_numpy(noise)
    ).prev_sample.numpy()
    actual = ours.step(x, t, x, eta=1.0, variance_noise=noise).prev_sample
    assert parity.relative_error(actual, expected) <= 1e-6
    with pytest.raises(ValueError, match="not both"):
        ours.step(x, t, x, eta=1.0, variance_noise=noise, generator=np.random.default_rng(0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_add_noise_and_get_velocity(dtype):
    ref = diffusers.DDIMScheduler.from_config(SD21_V)
    ours = ours_class().from_config(SD21_V)
    x0 = parity.initial_sample(dtype)
    noise = np.random.default_rng(7).standard_normal(x0.shape).astype(dtype)
    timesteps = np.array([0, 999])
    args_ref = (torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(timesteps))
    for method in ("add_noise", "get_velocity"):
        expected = getattr(ref, method)(*args_ref).numpy()
        actual = getattr(ours, method)(x0, noise, timesteps)
        assert actual.dtype == dtype
        np.testing.assert_allclose(actual, expected, rtol=1e-3 if dtype == np.float16 else 1e-6, atol=1e-6)


def test_keeps_float16():
    scheduler = ours_class().from_config(SD15)
    scheduler.set_timesteps(5)
    x = parity.initial_sample(np.float16)
    out = scheduler.step(x, scheduler.timesteps[0], x, eta=0.5, generator=np.random.default_rng(0))
    assert out.prev_sample.dtype == np.float16 and out.pred_original_sample.dtype == np.float16


@pytest.mark.parametrize(
    "option, value",
    [("prediction_type", "score"), ("timestep_spacing", "quadratic"), ("beta_schedule", "sigmoid")],
)
def test_bad_option_values_name_the_option(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours_class()(**{option: value})


def test_step_before_set_timesteps():
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        ours_class()().step(x, 999, x)


def test_timestep_outside_training_range():
    scheduler = ours_class()()
    scheduler.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="outside the training timesteps"):
        scheduler.step(x, 1000, x)


@pytest.mark.parametrize("source", ["PNDMScheduler", "DDPMScheduler", "LCMScheduler"])
def test_from_config_swap_keeps_diffusers_keys(source):
    from sdrt.schedulers import get_scheduler_class

    ref_source = getattr(diffusers, source).from_config(SD15)
    ours_source = get_scheduler_class(source).from_config(SD15)
    expected = diffusers.DDIMScheduler.from_config(ref_source.config).config
    swapped = ours_class().from_config(ours_source.config)
    assert set(swapped.config) == set(expected)
    for key in expected:
        if not key.startswith("_"):
            assert swapped.config[key] == expected[key], key
