"""diffusers' denoising loop, as every sdrt pipeline runs it: predict, ``scheduler.step``, the conditioners'
``after_step``, ``callback_on_step_end``, the deprecated ``callback``, progress as diffusers counts it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .call_state import CallState
from .timesteps import step_kwargs

if TYPE_CHECKING:
    from .base import DiffusionPipeline


def denoise(
    pipe: DiffusionPipeline,
    state: dict[str, Any],
    timesteps: Sequence[Any],
    num_inference_steps: int,
    predict: Callable[[dict[str, Any], Any], Any],
    *,
    noise: Any,
    eta: float = 0.0,
    after_step: Callable[[int, Any, dict[str, Any]], None] | None = None,
    callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
    callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    step: Callable[[dict[str, Any], Any, dict[str, Any]], Any] | None = None,
) -> Any:
    """``pipe``'s loop: predict, ``scheduler.step``, ``after_step``, callbacks, progress.

    ``state`` holds ``latents`` and whatever the callback may read or replace; the call's own scheduler
    and loop state (``interrupt``, the deprecated ``callback``) come from its :class:`CallState`.
    ``step(state, t, step_kwargs)``, when given, replaces predict + ``scheduler.step`` and returns the new
    latents (MultiDiffusion steps each view with a scheduler of its own).
    """
    call = pipe._state or CallState(pipe.scheduler)
    scheduler = call.scheduler
    kwargs = step_kwargs(scheduler, noise, eta)
    order = scheduler.order
    num_warmup_steps = len(timesteps) - num_inference_steps * order
    call.num_timesteps = len(timesteps)
    with pipe.progress_bar(total=num_inference_steps) as bar:
        for i, t in enumerate(timesteps):
            if call.interrupt:
                continue
            if step is not None:
                state["latents"] = step(state, t, kwargs)
            else:
                output = scheduler.step(predict(state, t), t, state["latents"], **kwargs)
                state["latents"] = output.prev_sample
                if "denoised" in state:  # LCM's x0 estimate, what its pipelines decode
                    state["denoised"] = output.denoised
            if after_step is not None:
                after_step(i, t, state)
            if callback_on_step_end is not None:
                outputs = callback_on_step_end(
                    pipe, i, t, {k: state[k] for k in callback_on_step_end_tensor_inputs}
                )
                for key, value in (outputs or {}).items():
                    if key in state:
                        state[key] = value
            if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % order == 0):
                bar.update()
                if call.callback is not None and i % call.callback_steps == 0:
                    call.callback(i // order, t, state["latents"])
    return state["latents"]
