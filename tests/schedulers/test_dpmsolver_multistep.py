"""DPMSolverMultistepScheduler against diffusers: DPM++ 2M as SD pipelines use it, every algorithm type,
order and solver type, spacings, sigma spacings, prediction types, final-step options, add_noise, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity

torch = parity.torch
diffusers = parity.diffusers

NAME = "DPMSolverMultistepScheduler"
SD15 = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    clip_sample=False,
)
DPMPP_2M = dict(SD15, algorithm_type="dpmsolver++", solver_order=2)
SD21_V = dict(SD15, prediction_type="v_prediction", timestep_spacing="trailing")
DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", parity.ARRAY_MODULES)


def ours(config):
    from sdrt.schedulers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(config)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 25, 50])
def test_dpmpp_2m_sd15(xp, dtype, karras, steps):
    config = dict(DPMPP_2M, use_karras_sigmas=karras)
    assert parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp) == steps


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_1000_steps(xp, dtype):
    # linspace and leading spacing repeat timesteps at 1000 steps, where diffusers itself gives NaN.
    config = dict(DPMPP_2M, timestep_spacing="trailing")
    assert parity.run_parity(NAME, config, 1000, dtype=dtype, xp=xp) == 1000


ALGORITHMS = [
    (algorithm, order, solver_type)
    for algorithm in ("dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver")
    for order in (1, 2, 3)
    for solver_type in ("midpoint", "heun")
    if not (algorithm == "sde-dpmsolver" and order == 3)
]


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm,order,solver_type", ALGORITHMS)
@pytest.mark.parametrize("steps", [3, 10, 25])
def test_algorithm_order_solver(xp, dtype, algorithm, order, solver_type, steps):
    config = dict(SD15, algorithm_type=algorithm, solver_order=order, solver_type=solver_type)
    if algorithm in ("dpmsolver", "sde-dpmsolver"):
        config["final_sigmas_type"] = "sigma_min"  # diffusers refuses "zero" for these
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_spacings_and_karras(xp, dtype, karras, spacing, steps):
    config = dict(DPMPP_2M, timestep_spacing=spacing, use_karras_sigmas=karras)
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("algorithm", ["dpmsolver++", "dpmsolver"])
def test_prediction_types(xp, dtype, prediction_type, algorithm):
    config = dict(
        SD21_V, prediction_type=prediction_type, algorithm_type=algorithm, final_sigmas_type="sigma_min"
    )
    parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config",
    [
        SD21_V,
        dict(DPMPP_2M, use_lu_lambdas=True),
        dict(DPMPP_2M, use_exponential_sigmas=True),
        dict(DPMPP_2M, use_beta_sigmas=True),
        dict(DPMPP_2M, use_karras_sigmas=True, solver_order=3, solver_type="heun"),
        dict(DPMPP_2M, euler_at_final=True),
        dict(DPMPP_2M, lower_order_final=False, final_sigmas_type="sigma_min"),
        dict(DPMPP_2M, final_sigmas_type="sigma_min", solver_order=3),
        dict(DPMPP_2M, lambda_min_clipped=-5.1),
        dict(DPMPP_2M, lambda_min_clipped=-5.1, timestep_spacing="trailing"),
        dict(SD21_V, rescale_betas_zero_snr=True),
        dict(DPMPP_2M, thresholding=True, prediction_type="sample", sample_max_value=1.5),
        dict(SD15, algorithm_type="dpmsolver", final_sigmas_type="sigma_min", thresholding=True),
        dict(DPMPP_2M, use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0),
        dict(DPMPP_2M, algorithm_type="sde-dpmsolver++", use_karras_sigmas=True),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(beta_schedule="linear", trained_betas=np.linspace(1e-4, 2e-2, 1000).tolist()),
        dict(DPMPP_2M, steps_offset=3, timestep_spacing="leading"),
    ],
    ids=[
        "sd21-v",
        "lu-lambdas",
        "exponential",
        "beta",
        "karras-3-heun",
        "euler-at-final",
        "no-lower-order-final",
        "sigma-min-3",
        "lambda-min-clipped",
        "lambda-min-clipped-trailing",
        "zero-snr",
        "thresholding",
        "dpmsolver-thresholding",
        "flow",
        "sde-karras",
        "cosine",
        "trained-betas",
        "steps-offset",
    ],
)
@pytest.mark.parametrize("steps", [2, 10])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_learned_variance_uses_first_three_channels(xp, dtype):
    ref = diffusers.DPMSolverMultistepScheduler.from_config(dict(SD15, variance_type="learned_range"))
    mine = ours(dict(SD15, variance_type="learned_range"))
    ref.set_timesteps(5)
    mine.set_timesteps(5)
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(dtype)
    out = np.random.default_rng(1).standard_normal((1, 6, 4, 4)).astype(dtype)
    for t_ref, t in zip(ref.timesteps, mine.timesteps):
        expected = ref.step(torch.from_numpy(out), t_ref, torch.from_numpy(x)).prev_sample.numpy()
        got = mine.step(xp.asarray(out), t, xp.asarray(x)).prev_sample
        assert parity.relative_error(got, expected) <= parity.TOLERANCE[dtype]


@XP
def test_custom_timesteps(xp):
    timesteps = [999, 850, 700, 500, 300, 120, 20]
    n = parity.run_parity(NAME, DPMPP_2M, None, xp=xp, set_timesteps_kwargs={"timesteps": timesteps})
    assert n == len(timesteps)


@XP
def test_variance_noise_is_used(xp):
    config = dict(DPMPP_2M, algorithm_type="sde-dpmsolver++")
    ref, mine = diffusers.DPMSolverMultistepScheduler.from_config(config), ours(config)
    ref.set_timesteps(4)
    mine.set_timesteps(4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(parity.SHAPE)
    x_ref, x_ours = torch.from_numpy(x), xp.asarray(x)
    for t_ref, t in zip(ref.timesteps, mine.timesteps):
        noise = rng.standard_normal(parity.SHAPE).astype(np.float32)
        x_ref = ref.step(
            parity.fake_model(x_ref, float(t_ref), torch),
            t_ref,
            x_ref,
            variance_noise=torch.from_numpy(noise),
        ).prev_sample
        x_ours = mine.step(
            parity.fake_model(x_ours, float(t), xp), t, x_ours, variance_noise=xp.asarray(noise)
        ).prev_sample
        assert parity.relative_error(x_ours, x_ref.numpy()) <= 1e-5


@XP
@pytest.mark.parametrize("config", [DPMPP_2M, dict(DPMPP_2M, use_karras_sigmas=True)])
def test_add_noise(xp, config):
    ref, mine = diffusers.DPMSolverMultistepScheduler.from_config(config), ours(config)
    ref.set_timesteps(10)
    mine.set_timesteps(10)
    rng = np.random.default_rng(5)
    x0, noise = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((2, 4, 8, 8))
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[1, 6]]).numpy()
    got = mine.add_noise(xp.asarray(x0), xp.asarray(noise), xp.asarray(mine.timesteps[[1, 6]]))
    assert parity.relative_error(got, expected) <= 1e-6


def test_from_config_swap_keeps_diffusers_keys():
    source = diffusers.PNDMScheduler.from_config(SD15)
    theirs = diffusers.DPMSolverMultistepScheduler.from_config(source.config)
    mine = ours(source.config)
    assert set(mine.config) == set(dict(theirs.config))
    for key, value in theirs.config.items():
        if not key.startswith("_"):
            assert mine.config[key] == value, key
    # and back: swapping to another solver keeps what diffusers keeps
    from sdrt.schedulers import UniPCMultistepScheduler

    assert set(UniPCMultistepScheduler.from_config(mine.config).config) == set(
        dict(diffusers.UniPCMultistepScheduler.from_config(theirs.config).config)
    )


def test_other_solvers_names_are_mapped_like_diffusers():
    mine = ours(dict(SD15, algorithm_type="deis", solver_type="bh2", final_sigmas_type="sigma_min"))
    assert mine.config.algorithm_type == "dpmsolver++" and mine.config.solver_type == "midpoint"


@pytest.mark.parametrize(
    "option,value",
    [
        ("algorithm_type", "dpm"),
        ("solver_type", "rk4"),
        ("solver_order", 4),
        ("timestep_spacing", "cosine"),
        ("beta_schedule", "sigmoid"),
        ("use_dynamic_shifting", True),
    ],
)
def test_bad_option_is_named(option, value):
    with pytest.raises(NotImplementedError, match=option):
        ours(dict(SD15, **{option: value}))


def test_invalid_combinations():
    with pytest.raises(ValueError, match="final_sigmas_type"):
        ours(dict(SD15, algorithm_type="dpmsolver"))
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        ours(dict(SD15, use_karras_sigmas=True, use_exponential_sigmas=True))
    with pytest.raises(ValueError, match="timesteps"):
        ours(dict(SD15, use_karras_sigmas=True)).set_timesteps(timesteps=[999, 500])


def test_step_before_set_timesteps():
    scheduler = ours(SD15)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        scheduler.step(np.zeros((1, 4, 2, 2)), 999, np.zeros((1, 4, 2, 2)))


def test_timestep_not_in_schedule():
    scheduler = ours(SD15)
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(np.zeros((1, 4, 2, 2)), 12345, np.zeros((1, 4, 2, 2)))


def test_float16_sample_keeps_its_dtype():
    scheduler = ours(DPMPP_2M)
    scheduler.set_timesteps(5)
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float16)
    for t in scheduler.timesteps:
        x = scheduler.step(parity.fake_model(x, float(t), np), t, x).prev_sample
        assert x.dtype == np.float16
    assert np.isfinite(x).all()
