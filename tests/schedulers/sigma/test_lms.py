"""LMSDiscreteScheduler's own cases against diffusers (its shared grids are in test_sigma_schedulers.py):
orders, and coefficients equal to diffusers' scipy quadrature without scipy."""

from __future__ import annotations

import pytest

from tests.schedulers import common_checks, parity
from tests.schedulers.parity import DTYPES, SD15, XP

diffusers = parity.diffusers

NAME = "LMSDiscreteScheduler"


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_orders(xp, dtype, order):
    parity.run_parity(NAME, SD15, 25, dtype=dtype, xp=xp, step_kwargs=dict(order=order))


@pytest.mark.parametrize("steps", [4, 10, 50])
@pytest.mark.parametrize("karras", [False, True])
def test_lms_coefficients_match_scipy_quadrature(steps, karras):
    config = dict(SD15, use_karras_sigmas=karras)
    ref, sched = diffusers.LMSDiscreteScheduler.from_config(config), common_checks.ours(NAME, config)
    ref.set_timesteps(steps)
    sched.set_timesteps(steps)
    for t in range(steps):
        order = min(t + 1, 4)
        for k in range(order):
            expected = ref.get_lms_coefficient(order, t, k)
            assert sched.get_lms_coefficient(order, t, k) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_runtime_needs_no_scipy():
    import ast
    import inspect

    from sdrt.schedulers.sigma import lms, schedule

    for module in (lms, schedule):
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(inspect.getsource(module)))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in getattr(node, "names", [])
        }
        assert "scipy" not in imported
        assert "quad(" not in inspect.getsource(module)
