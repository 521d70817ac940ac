"""DPMSolverMultistepScheduler's own cases against diffusers (its shared grids are in
test_exponential_integrators.py): every algorithm type, order and solver type, prediction types per algorithm,
final-step and sigma options, learned variance, variance noise, float16 samples and its extra error."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DPMPP_2M, DTYPES, SD15_PIPELINE, XP

torch = parity.torch
diffusers = parity.diffusers

NAME = "DPMSolverMultistepScheduler"
SD21_V = dict(SD15_PIPELINE, prediction_type="v_prediction", timestep_spacing="trailing")


def ours(config):
    return common_checks.ours(NAME, config)


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
    config = dict(SD15_PIPELINE, algorithm_type=algorithm, solver_order=order, solver_type=solver_type)
    if algorithm in ("dpmsolver", "sde-dpmsolver"):
        config["final_sigmas_type"] = "sigma_min"  # diffusers refuses "zero" for these
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
        dict(DPMPP_2M, use_karras_sigmas=True, solver_order=3, solver_type="heun"),
        dict(DPMPP_2M, euler_at_final=True),
        dict(DPMPP_2M, lower_order_final=False, final_sigmas_type="sigma_min"),
        dict(DPMPP_2M, final_sigmas_type="sigma_min", solver_order=3),
        dict(DPMPP_2M, lambda_min_clipped=-5.1, timestep_spacing="trailing"),
        dict(SD21_V, rescale_betas_zero_snr=True),
        dict(SD15_PIPELINE, algorithm_type="dpmsolver", final_sigmas_type="sigma_min", thresholding=True),
        dict(DPMPP_2M, use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0),
        dict(DPMPP_2M, algorithm_type="sde-dpmsolver++", use_karras_sigmas=True),
        dict(beta_schedule="squaredcos_cap_v2"),
    ],
    ids=[
        "sd21-v",
        "lu-lambdas",
        "karras-3-heun",
        "euler-at-final",
        "no-lower-order-final",
        "sigma-min-3",
        "lambda-min-clipped-trailing",
        "zero-snr",
        "dpmsolver-thresholding",
        "flow",
        "sde-karras",
        "cosine",
    ],
)
@pytest.mark.parametrize("steps", [2, 10])
def test_options(xp, dtype, config, steps):
    parity.run_parity(NAME, config, steps, dtype=dtype, xp=xp)


@XP
@pytest.mark.parametrize("dtype", DTYPES)
def test_learned_variance_uses_first_three_channels(xp, dtype):
    ref = diffusers.DPMSolverMultistepScheduler.from_config(
        dict(SD15_PIPELINE, variance_type="learned_range")
    )
    mine = ours(dict(SD15_PIPELINE, variance_type="learned_range"))
    ref.set_timesteps(5)
    mine.set_timesteps(5)
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(dtype)
    out = np.random.default_rng(1).standard_normal((1, 6, 4, 4)).astype(dtype)
    for t_ref, t in zip(ref.timesteps, mine.timesteps):
        expected = ref.step(torch.from_numpy(out), t_ref, torch.from_numpy(x)).prev_sample.numpy()
        got = mine.step(xp.asarray(out), t, xp.asarray(x)).prev_sample
        assert parity.relative_error(got, expected) <= parity.TOLERANCE[dtype]


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


def test_two_sigma_spacings_refused():
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        ours(dict(SD15_PIPELINE, use_karras_sigmas=True, use_exponential_sigmas=True))


def test_float16_sample_keeps_its_dtype():
    scheduler = ours(DPMPP_2M)
    scheduler.set_timesteps(5)
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float16)
    for t in scheduler.timesteps:
        x = scheduler.step(parity.fake_model(x, float(t), np), t, x).prev_sample
        assert x.dtype == np.float16
    assert np.isfinite(x).all()
