"""The base of the variance-exploding schedulers: they start from noise of std sigma_max."""

from __future__ import annotations

from typing import Any

from ..scheduler import SchedulerMixin


class ExplodingScheduler(SchedulerMixin):
    _compatibles = ()

    @property
    def init_noise_sigma(self) -> float:
        return self.config.sigma_max

    def scale_model_input(self, sample: Any, timestep: Any = None) -> Any:
        return sample
