"""DDPMScheduler against diffusers: every variance type, prediction type, spacing and clipping option."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "DDPMScheduler"
SD15 = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    clip_sample=False,
)
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours_class():
    from sdrt.schedulers import DDPMScheduler

    return DDPMScheduler


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_default_config_step_counts(xp, dtype, steps):
    assert parity.run_parity(NAME, {}, steps, dtype=dtype, xp=xp) == steps


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_1000_training_steps(xp, dtype):
    assert parity.run_parity(NAME, {}, 1000, dtype=dtype, xp=xp) == 1000


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_small_log", "fixed_large"])
def test_fixed_variance_types(xp, dtype, variance_type):
    parity.run_parity(NAME, dict(SD15, variance_type=variance_type), 25, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_prediction_types_and_spacings(xp, dtype, prediction_type, spacing):
    config = dict(SD15, prediction_type=prediction_type, timestep_spacing=spacing)
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize(
    "config",
    [
        dict(clip_sample=True, clip_sample_range=0.5),
        dict(thresholding=True, sample_max_value=1.5, dynamic_thresholding_ratio=0.9),
        dict(SD15, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction"),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(beta_schedule="sigmoid"),
        dict(beta_schedule="laplace"),
        dict(trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
        dict(steps_offset=3),
    ],
    ids=["clip-range", "thresholding", "zero-snr", "cosine", "sigmoid", "laplace", "trained-betas", "offset"],
)
def test_config_options(xp, config):
    parity.run_parity(NAME, config, 10, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_custom_timesteps(xp, dtype):
    kwargs = dict(timesteps=[999, 800, 600, 421, 100, 37, 5])
    assert parity.run_parity(NAME, SD15, None, dtype=dtype, xp=xp, set_timesteps_kwargs=kwargs) == 7


def learned_model(x, t, lib):
    """A fake model predicting epsilon and a variance channel block in (0, 1)."""
    eps = parity.fake_model(x, t, lib)
    variance = 0.5 + 0.4 * lib.tanh(x + t / 500.0)
    return lib.cat([eps, variance], 1) if lib is torch else lib.concatenate([eps, variance], 1)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variance_type", ["learned", "learned_range"])
def test_learned_variance(xp, dtype, variance_type):
    """Models that output twice the channels: the second half is the (log-)variance."""
    if xp is None:
        pytest.skip("CuPy is not available")
    config = dict(variance_type=variance_type)
    with parity.injected_noise():
        ref = diffusers.DDPMScheduler.from_config(config)
        ours = ours_class().from_config(config)
        ref.set_timesteps(25)
        ours.set_timesteps(25)
        x_ref = torch.from_numpy(parity.initial_sample(dtype))
        x_ours = xp.asarray(parity.initial_sample(dtype))
        generator = xp.random.default_rng(parity.SEED + 1)
        for t_ref, t_ours in zip(ref.timesteps, ours.timesteps):
            x_ref = ref.step(learned_model(x_ref, float(t_ref), torch), t_ref, x_ref).prev_sample
            out = ours.step(learned_model(x_ours, float(t_ours), xp), t_ours, x_ours, generator=generator)
            x_ours = out.prev_sample
            assert x_ours.dtype == dtype
            assert parity.relative_error(x_ours, x_ref.numpy()) <= parity.TOLERANCE[dtype]


def test_learned_variance_needs_double_channels():
    scheduler = ours_class()(variance_type="learned_range")
    scheduler.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="twice the sample's channels"):
        scheduler.step(x, scheduler.timesteps[0], x)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_fixed_large_log_is_nan_as_in_diffusers():
    """diffusers takes the square root of log(beta) < 0 for fixed_large_log: the result is NaN in both."""
    config = dict(variance_type="fixed_large_log")
    x = parity.initial_sample()
    with parity.injected_noise():
        ref = diffusers.DDPMScheduler.from_config(config)
        ref.set_timesteps(10)
        expected = ref.step(torch.from_numpy(x), ref.timesteps[0], torch.from_numpy(x)).prev_sample
    ours = ours_class().from_config(config)
    ours.set_timesteps(10)
    actual = ours.step(x, ours.timesteps[0], x, generator=np.random.default_rng(0)).prev_sample
    assert torch.isnan(expected).all() and np.isnan(actual).all()


def test_step_without_set_timesteps_walks_every_training_timestep():
    """Before set_timesteps, diffusers' DDPM steps from t to t - 1; so does ours."""
    x = parity.initial_sample()
    with parity.injected_noise():
        ref = diffusers.DDPMScheduler()
        expected = ref.step(torch.from_numpy(x), 500, torch.from_numpy(x)).prev_sample.numpy()
    ours = ours_class()()
    assert ours.previous_timestep(500) == 499
    actual = ours.step(x, 500, x, generator=np.random.default_rng(parity.SEED + 1)).prev_sample
    assert parity.relative_error(actual, expected) <= 1e-5


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_previous_timestep(spacing):
    ref = diffusers.DDPMScheduler(timestep_spacing=spacing, steps_offset=1)
    ours = ours_class()(timestep_spacing=spacing, steps_offset=1)
    ref.set_timesteps(7)
    ours.set_timesteps(7)
    for t in ours.timesteps:
        assert ours.previous_timestep(t) == int(ref.previous_timestep(torch.tensor(t)))
    ref.set_timesteps(timesteps=[900, 500, 20])
    ours.set_timesteps(timesteps=[900, 500, 20])
    assert [ours.previous_timestep(t) for t in (900, 500, 20)] == [500, 20, -1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_add_noise_and_get_velocity(dtype):
    ref = diffusers.DDPMScheduler.from_config(SD15)
    ours = ours_class().from_config(ref.config)
    x0 = parity.initial_sample(dtype)
    noise = np.random.default_rng(7).standard_normal(x0.shape).astype(dtype)
    timesteps = np.array([10, 900])
    args_ref = (torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(timesteps))
    for method in ("add_noise", "get_velocity"):
        expected = getattr(ref, method)(*args_ref).numpy()
        actual = getattr(ours, method)(x0, noise, timesteps)
        assert actual.dtype == dtype
        np.testing.assert_allclose(actual, expected, rtol=1e-3 if dtype == np.float16 else 1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "option, value",
    [
        ("variance_type", "fixed_medium"),
        ("prediction_type", "score"),
        ("timestep_spacing", "quadratic"),
        ("beta_schedule", "exp"),
    ],
)
def test_bad_option_values_name_the_option(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours_class()(**{option: value})


def test_timestep_not_in_schedule():
    scheduler = ours_class()()
    scheduler.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(x, 123, x)
    with pytest.raises(ValueError, match="outside the training timesteps"):
        scheduler.step(x, 1000, x)


def test_set_timesteps_errors():
    scheduler = ours_class()()
    with pytest.raises(ValueError, match="descending"):
        scheduler.set_timesteps(timesteps=[10, 20])
    with pytest.raises(ValueError, match="cannot exceed"):
        scheduler.set_timesteps(1001)
    with pytest.raises(ValueError, match="not both"):
        scheduler.set_timesteps(10, timesteps=[20, 10])


@pytest.mark.parametrize("source", ["PNDMScheduler", "DDIMScheduler", "DDPMScheduler"])
def test_from_config_swap_keeps_diffusers_keys(source):
    from sdrt.schedulers import get_scheduler_class

    ref_source = getattr(diffusers, source).from_config(SD15)
    ours_source = get_scheduler_class(source).from_config(SD15)
    expected = diffusers.DDPMScheduler.from_config(ref_source.config).config
    actual = ours_class().from_config(ours_source.config).config
    assert set(actual) == set(expected)
    for key in expected:
        if not key.startswith("_"):
            assert actual[key] == expected[key], key
    assert type(ours_class().from_config(ours_source.config)).__name__ == NAME
