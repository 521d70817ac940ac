"""Which timesteps a call runs: a step count or custom timesteps/sigmas (``retrieve_timesteps``), the tail
``strength`` keeps (img2img, inpainting), the head ``denoising_end`` keeps (SDXL), and the keyword
arguments ``scheduler.step`` takes."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from sdrt.runtime.errors import InputError


def step_kwargs(scheduler: Any, noise: Any, eta: float) -> dict[str, Any]:
    """``generator`` (and ``eta``) for ``scheduler.step`` where its signature takes them (as diffusers)."""
    parameters = inspect.signature(scheduler.step).parameters
    kwargs: dict[str, Any] = {}
    if "eta" in parameters:
        kwargs["eta"] = eta
    if "generator" in parameters:
        kwargs["generator"] = noise
    return kwargs


def retrieve_timesteps(
    scheduler: Any,
    num_inference_steps: int | None = None,
    timesteps: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    **options: Any,
) -> tuple[Any, int]:
    """``scheduler.set_timesteps`` with a step count, custom timesteps or custom sigmas (one of them), and
    ``options`` (LCM's ``original_inference_steps``, ``strength``) as diffusers hands them on."""
    if timesteps is not None and sigmas is not None:
        raise InputError("Only one of `timesteps` or `sigmas` can be passed.")
    for name, value in (("timesteps", timesteps), ("sigmas", sigmas)):
        if value is not None:
            if name not in inspect.signature(scheduler.set_timesteps).parameters:
                raise InputError(
                    f"{type(scheduler).__name__} does not take custom `{name}`; pass num_inference_steps"
                )
            scheduler.set_timesteps(**{name: value}, **options)
            return scheduler.timesteps, len(scheduler.timesteps)
    if num_inference_steps is None:
        raise InputError("pass num_inference_steps, or custom `timesteps` or `sigmas`")
    scheduler.set_timesteps(num_inference_steps, **options)
    return scheduler.timesteps, num_inference_steps


def check_strength(strength: float, *, zero: bool = True) -> None:
    """``strength`` in [0, 1] (``zero=False``: in (0, 1], where 0 would leave no step)."""
    if not 0 <= strength <= 1 or (strength == 0 and not zero):
        interval = "[0.0, 1.0]" if zero else "(0.0, 1.0]"
        raise InputError(f"The value of strength should in {interval} but is {strength}")


def strength_timesteps(scheduler: Any, num_inference_steps: int, strength: float) -> tuple[Any, int]:
    """The tail of the schedule that ``strength`` keeps, and its length in steps (diffusers' ``get_timesteps``)."""
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order :]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * scheduler.order)
    steps = num_inference_steps - t_start
    if steps < 1:
        raise InputError(
            f"strength={strength} with num_inference_steps={num_inference_steps} leaves no denoising step; "
            "raise either of them"
        )
    return timesteps, steps


def check_denoising_fractions(denoising_start: float | None, denoising_end: float | None) -> None:
    """``denoising_start`` / ``denoising_end``: fractions of the training schedule in [0, 1] (diffusers ignores
    others silently; sdrt refuses them), the start before the end."""
    for name, value in (("denoising_start", denoising_start), ("denoising_end", denoising_end)):
        if value is not None and not 0 <= value <= 1:
            raise InputError(f"`{name}` is a fraction of the schedule in [0, 1], got {value}")
    if denoising_start is not None and denoising_end is not None and 0 < denoising_start < 1:
        if 0 < denoising_end < 1 and denoising_start >= denoising_end:
            raise InputError(
                f"`denoising_start`: {denoising_start} cannot be larger than or equal to `denoising_end`: "
                f"{denoising_end}"
            )


def start_timesteps(scheduler: Any, denoising_start: float) -> tuple[Any, int]:
    """The tail of the schedule below ``denoising_start`` (a fraction of the training schedule), as SDXL's
    img2img and inpainting ``get_timesteps`` cut it for a refiner (``strength`` is then ignored)."""
    train_steps = scheduler.config.num_train_timesteps
    cutoff = int(round(train_steps - denoising_start * train_steps))
    steps = int(sum(1 for t in scheduler.timesteps if t < cutoff))
    if scheduler.order == 2 and steps % 2 == 0:
        steps += 1  # end after the second-order step, not between its two halves
    t_start = len(scheduler.timesteps) - steps
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start)
    if steps < 1:
        raise InputError(f"denoising_start={denoising_start} leaves no denoising step; lower it")
    return scheduler.timesteps[t_start:], steps


def cut_at_denoising_end(scheduler: Any, timesteps: Any, denoising_end: float | None) -> Any:
    """The timesteps down to ``denoising_end`` (a fraction of the training schedule), as SDXL cuts them."""
    if denoising_end is None or not 0 < denoising_end < 1:
        return timesteps
    train_steps = scheduler.config.num_train_timesteps
    cutoff = int(round(train_steps - denoising_end * train_steps))
    return timesteps[: len([t for t in timesteps if t >= cutoff])]
