"""What ``step`` returns, with diffusers' attribute names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class SchedulerOutput:
    """``prev_sample`` is x_{t-1}; ``pred_original_sample`` the model's x_0 estimate, where the scheduler has one."""

    prev_sample: Any
    pred_original_sample: Any = None

    def __getitem__(self, index: int) -> Any:
        return (self.prev_sample, self.pred_original_sample)[index]


@dataclass
class LCMSchedulerOutput:
    prev_sample: Any
    denoised: Any = None

    def __getitem__(self, index: int) -> Any:
        return (self.prev_sample, self.denoised)[index]


@dataclass
class TCDSchedulerOutput:
    """``pred_noised_sample`` is x_s, the model's sample at the intermediate timestep s = floor((1 - gamma) t')."""

    prev_sample: Any
    pred_noised_sample: Any = None

    def __getitem__(self, index: int) -> Any:
        return (self.prev_sample, self.pred_noised_sample)[index]


class _NamedFields:
    """``output[0]`` and ``output["name"]``, as diffusers' BaseOutput allows (its pipelines use both)."""

    def __getitem__(self, index: int | str) -> Any:
        if isinstance(index, str):
            return getattr(self, index)
        return tuple(vars(self).values())[index]


@dataclass
class RePaintSchedulerOutput(_NamedFields):
    prev_sample: Any
    pred_original_sample: Any = None


@dataclass
class SdeVeOutput(_NamedFields):
    """``prev_sample_mean`` is the step without its noise term."""

    prev_sample: Any
    prev_sample_mean: Any = None


@dataclass
class KarrasVeOutput(_NamedFields):
    """``derivative`` is dx/dsigma at the step's start, which the second-order correction reuses."""

    prev_sample: Any
    derivative: Any = None
    pred_original_sample: Any = None


@dataclass
class CMStochasticIterativeSchedulerOutput(_NamedFields):
    prev_sample: Any
