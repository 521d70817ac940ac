"""Per-call state, so that one pipeline object serves several threads at once.

diffusers keeps a call's loop state on the pipeline (``_interrupt``, ``_num_timesteps``, ``_guidance_scale``)
and steps the pipeline's own scheduler (step index, previous model outputs): two calls at once share them.
sdrt gives every call a :class:`CallState` of its own, kept per thread, holding:

- its own scheduler, configured like ``pipe.scheduler`` (``type(s).from_config(s.config)``), on which the
  call sets its timesteps and steps;
- the loop state diffusers' properties and callbacks read: ``interrupt``, ``num_timesteps``,
  ``guidance_scale``, ``guidance_rescale``, ``do_classifier_free_guidance``, ``clip_skip``,
  ``cross_attention_kwargs``; and the deprecated ``callback`` / ``callback_steps``.

Inside a call, in the calling thread (the pipeline's own code, a ``callback_on_step_end``), ``pipe.scheduler``
is the call's scheduler and ``pipe.interrupt`` / ``pipe._interrupt = True`` are the call's; elsewhere
``pipe.scheduler`` is the scheduler new calls are configured from (assignable, as in diffusers).
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sdrt.runtime.errors import InputTypeError

from .checks import check_arguments

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CallState:
    """One call's scheduler and loop state (see the module docstring)."""

    scheduler: Any
    interrupt: bool = False
    num_timesteps: int | None = None
    guidance_scale: float | None = None
    guidance_rescale: float = 0.0
    do_classifier_free_guidance: bool = False
    clip_skip: int | None = None
    cross_attention_kwargs: dict[str, Any] | None = None
    callback: Callable[..., Any] | None = None  # diffusers' deprecated per-step callback
    callback_steps: int = 1
    prompt_syntax: str | None = None  # "a1111": A1111's prompt syntax (``weighted_prompts``)
    step_cache: Any = None  # cache_interval / cache_branch (``step_cache.CacheSettings``; None: not given)
    lora: Any = None  # the LoRA adapters and weights as at the call's start (``lora.LoraSnapshot``)
    # the call's arguments by name, defaults applied (what the shared opening steps read: ``guided.open_call``)
    arguments: dict[str, Any] = field(default_factory=dict)


def copy_scheduler(scheduler: Any) -> Any:
    """A fresh scheduler configured like ``scheduler``, with none of its per-call state."""
    if scheduler is None:
        return None
    if hasattr(type(scheduler), "from_config") and hasattr(scheduler, "config"):
        return type(scheduler).from_config(scheduler.config)
    return copy.deepcopy(scheduler)


def take_callback(state: CallState | None, callback: Any, callback_steps: Any) -> None:
    """The deprecated pipelines' own ``callback(step, timestep, latents)`` every ``callback_steps`` steps."""
    if state is None:
        return
    if callback is not None and not callable(callback):
        raise InputTypeError(f"`callback` must be callable, got {type(callback).__name__}")
    if isinstance(callback_steps, bool) or not isinstance(callback_steps, int) or callback_steps < 1:
        raise InputTypeError(f"`callback_steps` has to be a positive integer but is {callback_steps!r}")
    state.callback, state.callback_steps = callback, callback_steps


def pipeline_call(method: F) -> F:
    """Decorator of a pipeline's ``__call__``: the call runs with a :class:`CallState` of its own, and its
    arguments are checked by name first (``checks.check_arguments``: types, ranges, unsupported options)."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as error:
            raise InputTypeError(f"{type(self).__name__}.__call__: {error}") from None
        bound.apply_defaults()
        with self.call_state() as state:
            state.arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
            check_arguments(self, state, bound.arguments)
            return method(self, *args, **kwargs)

    return cast(F, call)


class FromCall:
    """A read-only pipeline attribute taken from the current thread's call (None outside one)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, pipe: Any, owner: type | None = None) -> Any:
        if pipe is None:
            return self
        state = pipe._state
        return None if state is None else getattr(state, self.name)
