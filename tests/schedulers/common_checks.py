"""Checks every scheduler's tests share: add_noise against diffusers, the step-order and timestep errors,
and the keys a ``from_config`` swap keeps (each as diffusers does)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.schedulers import parity


def ours(name: str, config: dict[str, Any]) -> Any:
    from sdrt.schedulers import get_scheduler_class

    return get_scheduler_class(name).from_config(config)


def check_add_noise(name: str, config: dict[str, Any]) -> None:
    ref = getattr(parity.diffusers, name).from_config(config)
    sched = ours(name, config)
    ref.set_timesteps(20)
    sched.set_timesteps(20)
    x0 = parity.initial_sample()
    noise = np.random.default_rng(7).standard_normal(x0.shape)
    torch = parity.torch
    expected = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref.timesteps[[0, 5]]).numpy()
    assert parity.relative_error(sched.add_noise(x0, noise, sched.timesteps[[0, 5]]), expected) <= 1e-6


def check_step_before_set_timesteps(name: str, config: dict[str, Any]) -> None:
    sched = ours(name, config)
    x = parity.initial_sample()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        sched.step(x, sched.timesteps[0], x)


def check_timestep_not_in_schedule(name: str, config: dict[str, Any]) -> None:
    sched = ours(name, config)
    sched.set_timesteps(10)
    x = parity.initial_sample()
    with pytest.raises(ValueError, match="not in the schedule"):
        sched.step(x, 998.5, x)


def check_from_config_swap_keys(name: str, source: str, config: dict[str, Any]) -> None:
    """Swapping ``source`` -> ``name`` -> ``source`` keeps the keys diffusers' same swaps keep."""
    from sdrt.schedulers import get_scheduler_class

    diffusers = parity.diffusers
    ref = getattr(diffusers, source).from_config(config)
    expected = dict(getattr(diffusers, name).from_config(ref.config).config)
    mine = get_scheduler_class(name).from_config(get_scheduler_class(source).from_config(config).config)
    assert set(dict(mine.config)) == set(expected)
    back = get_scheduler_class(source).from_config(mine.config)
    assert set(dict(back.config)) == set(dict(getattr(diffusers, source).from_config(ref.config).config))
