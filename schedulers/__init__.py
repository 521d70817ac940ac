"""NumPy/CuPy re-implementations of diffusers' schedulers, with diffusers' names, configs and API.

    from sdrt.schedulers import EulerDiscreteScheduler
    scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)

Classes are imported on first use, so ``import sdrt.schedulers`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from .config import FrozenConfig, load_config, register_to_config
from .output import (
    CMStochasticIterativeSchedulerOutput,
    KarrasVeOutput,
    LCMSchedulerOutput,
    RePaintSchedulerOutput,
    SchedulerOutput,
    SdeVeOutput,
    TCDSchedulerOutput,
)
from .scheduler import KARRAS_COMPATIBLES, SchedulerMixin

# class name -> module (in this package: family.module) that defines it
_CLASSES = {
    "DDPMScheduler": "alpha.ddpm",
    "DDIMScheduler": "alpha.ddim",
    "DDIMInverseScheduler": "alpha.ddim_inverse",
    "PNDMScheduler": "alpha.pndm",
    "LCMScheduler": "alpha.lcm",
    "TCDScheduler": "alpha.tcd",
    "RePaintScheduler": "alpha.repaint",
    "LMSDiscreteScheduler": "sigma.lms",
    "EulerDiscreteScheduler": "sigma.euler",
    "EulerAncestralDiscreteScheduler": "sigma.euler_ancestral",
    "HeunDiscreteScheduler": "sigma.heun",
    "KDPM2DiscreteScheduler": "sigma.kdpm2",
    "KDPM2AncestralDiscreteScheduler": "sigma.kdpm2_ancestral",
    "DPMSolverMultistepScheduler": "exponential.dpmsolver_multistep",
    "DPMSolverSinglestepScheduler": "exponential.dpmsolver_singlestep",
    "DEISMultistepScheduler": "exponential.deis",
    "UniPCMultistepScheduler": "exponential.unipc",
    "ScoreSdeVeScheduler": "exploding.score_sde_ve",
    "KarrasVeScheduler": "exploding.karras_ve",
    "CMStochasticIterativeScheduler": "exploding.consistency_models",
}

SCHEDULER_NAMES = tuple(_CLASSES)
# Those whose step(model_output, timestep, sample) fits a text-to-image pipeline's denoising loop; the others
# have loops of their own (diffusers' RePaintPipeline, ScoreSdeVePipeline, KarrasVePipeline,
# ConsistencyModelPipeline) with other step arguments or another kind of model.
OWN_LOOP_SCHEDULERS = (
    "RePaintScheduler",
    "ScoreSdeVeScheduler",
    "KarrasVeScheduler",
    "CMStochasticIterativeScheduler",
    "DDIMInverseScheduler",  # steps towards noise: DiffEdit's inversion
)
PIPELINE_SCHEDULER_NAMES = tuple(name for name in SCHEDULER_NAMES if name not in OWN_LOOP_SCHEDULERS)


def get_scheduler_class(name: str) -> type[SchedulerMixin]:
    """The sdrt scheduler class with diffusers' class name ``name``."""
    if name not in _CLASSES:
        raise ValueError(f"unknown scheduler class {name!r}; sdrt implements: {', '.join(SCHEDULER_NAMES)}")
    module = importlib.import_module(f".{_CLASSES[name]}", __name__)
    return getattr(module, name)


def scheduler_from_config(config: Mapping[str, Any] | str | os.PathLike, **kwargs: Any) -> SchedulerMixin:
    """Make the scheduler a config names in ``_class_name`` (a dict, a scheduler_config.json or its folder)."""
    if not isinstance(config, Mapping):
        config = load_config(config)
    name = config.get("_class_name")
    if name is None:
        raise ValueError(
            "the scheduler config has no `_class_name`; pick a class yourself, e.g. "
            "EulerDiscreteScheduler.from_config(config)"
        )
    if name not in _CLASSES:
        raise ValueError(
            f"the scheduler config names `_class_name`={name!r}, which sdrt does not implement; "
            f"choose one of {', '.join(SCHEDULER_NAMES)} with <Class>.from_config(config)"
        )
    return get_scheduler_class(name).from_config(config, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return get_scheduler_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_CLASSES))


__all__ = [
    *SCHEDULER_NAMES,
    "CMStochasticIterativeSchedulerOutput",
    "KarrasVeOutput",
    "RePaintSchedulerOutput",
    "SdeVeOutput",
    "FrozenConfig",
    "KARRAS_COMPATIBLES",
    "OWN_LOOP_SCHEDULERS",
    "PIPELINE_SCHEDULER_NAMES",
    "LCMSchedulerOutput",
    "SchedulerMixin",
    "SchedulerOutput",
    "TCDSchedulerOutput",
    "get_scheduler_class",
    "load_config",
    "register_to_config",
    "scheduler_from_config",
]
