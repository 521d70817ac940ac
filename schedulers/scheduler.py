"""The part every scheduler shares: config, compatibles, step-index bookkeeping."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import ConfigMixin

# diffusers' KarrasDiffusionSchedulers that sdrt implements: what Stable Diffusion pipelines accept.
KARRAS_COMPATIBLES = (
    "DDIMScheduler",
    "DDPMScheduler",
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "HeunDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
)


class SchedulerMixin(ConfigMixin):
    """Base class. Subclasses decorate ``__init__`` with ``@register_to_config``.

    Schedule arrays (``timesteps``, ``sigmas``, ``alphas_cumprod``) live on the host as NumPy
    arrays; ``step`` and friends compute in the array module of the sample they are given.
    """

    _compatibles: tuple[str, ...] = KARRAS_COMPATIBLES
    order = 1
    timesteps: np.ndarray | None = None
    num_inference_steps: int | None = None
    _step_index: int | None = None
    _begin_index: int | None = None

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    @property
    def step_index(self) -> int | None:
        """Index of the current step in the schedule; advances by one after each ``step``."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """First index of the schedule, set by a pipeline (img2img) with ``set_begin_index``."""
        return self._begin_index

    @property
    def _chosen_timesteps(self) -> np.ndarray:
        """``timesteps`` where set_timesteps (or the constructor) has set them."""
        if self.timesteps is None:
            raise RuntimeError(f"{type(self).__name__}: call set_timesteps(num_inference_steps) first")
        return self.timesteps

    @property
    def _index(self) -> int:
        """The step index inside ``step`` and its helpers, where ``_start_step`` has set it."""
        if self._step_index is None:
            raise RuntimeError(f"{type(self).__name__}: no step index yet; step() sets it at the first step")
        return self._step_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin_index = begin_index

    def _require_timesteps(self) -> int:
        """Refuse to step on the training schedule the constructor leaves in place (no set_timesteps).

        Returns the number of inference steps set_timesteps chose.
        """
        if self.num_inference_steps is None:
            raise RuntimeError(
                f"{type(self).__name__}: call set_timesteps(num_inference_steps) before step()"
            )
        return self.num_inference_steps

    def _start_step(self, timestep: Any) -> None:
        """Refuse a step before set_timesteps; at the first step, find where ``timestep`` stands."""
        self._require_timesteps()
        if self.step_index is None:
            self._init_step_index(timestep)

    def index_for_timestep(self, timestep: Any, schedule_timesteps: np.ndarray | None = None) -> int:
        """Position of ``timestep`` in the schedule (the second match when it occurs twice, as diffusers)."""
        if schedule_timesteps is None:
            schedule_timesteps = self._chosen_timesteps
        value = as_scalar(timestep)
        indices = np.flatnonzero(schedule_timesteps == value)
        if len(indices) == 0:
            raise ValueError(
                f"{type(self).__name__}: timestep {value} is not in the schedule set by set_timesteps "
                f"({len(schedule_timesteps)} steps from {schedule_timesteps[0]} to {schedule_timesteps[-1]}); "
                "pass one of scheduler.timesteps"
            )
        return int(indices[1] if len(indices) > 1 else indices[0])

    def _init_step_index(self, timestep: Any) -> None:
        if self.begin_index is None:
            self._step_index = self.index_for_timestep(timestep)
        else:
            self._step_index = self._begin_index


def as_scalar(value: Any) -> float:
    """A Python number from a number, a NumPy/CuPy 0-d array or a one-element array."""
    if hasattr(value, "item"):
        return value.item()
    return value


def step_indices(scheduler: Any, timesteps: Any) -> list[int]:
    """Schedule index for each of ``timesteps`` (add_noise): by lookup, or the pipeline's begin index."""
    values = [as_scalar(t) for t in (timesteps if getattr(timesteps, "ndim", 1) else [timesteps])]
    if scheduler.begin_index is None:
        return [scheduler.index_for_timestep(t) for t in values]
    index = scheduler.step_index if scheduler.step_index is not None else scheduler.begin_index
    return [index] * len(values)


def check_choice(scheduler: str, option: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Refuse an option value the scheduler does not implement, naming the option and its choices."""
    if value not in allowed:
        raise NotImplementedError(
            f"{scheduler}: {option}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}"
        )
