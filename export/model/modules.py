"""A model made of torch modules built in code, for the component classes to describe (benchmarks and
tests that export an SD1.5-sized UNet from its config, with no model folder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ModulesModel:
    """``ModelInfo`` over ``{"unet": module, ...}``: its classes and configs come from the modules."""

    model_type: str
    modules: dict[str, Any]

    @property
    def classes(self) -> dict[str, tuple[str, str]]:
        return {
            part: (type(m).__module__.split(".")[0], type(m).__name__) for part, m in self.modules.items()
        }

    @property
    def configs(self) -> dict[str, dict[str, Any]]:
        return {part: dict(m.config) for part, m in self.modules.items()}
