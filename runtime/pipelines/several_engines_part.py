"""``SeveralEnginesPart``: a pipeline part made of the bundle's engines of one kind (the ControlNets, the
T2I-Adapters), as ``from_pretrained`` loads it (every such engine the bundle has), as the constructor takes it
(one, a list, or diffusers' wrapper of several) and as ``pipe.engines`` lists it. A pipeline names it in
``part_loaders``; the base class calls it (composition, not a mixin)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.components import Component
from sdrt.runtime.errors import BundleError


@dataclass(frozen=True)
class SeveralEnginesPart:
    name: str  # the constructor keyword and attribute: "controlnet"
    kind: type[Component]  # its engines' component class
    several: Callable[[list[Any]], Any]  # diffusers' wrapper of several: MultiControlNetModel
    members: Callable[[Any], list[Any]]  # the engines of a part's value
    listed: Callable[[Bundle], Any]  # the bundle's names of them (the manifest's record)
    title: str  # for errors: "ControlNet"
    option: str  # build-engine's option that adds one: "--controlnet CONTROLNET_DIR"

    def components(self, bundle: Bundle) -> tuple[str, ...]:
        """The bundle's components of this part (a clear error where it has none)."""
        names = self.listed(bundle)
        if not names:
            raise BundleError(
                f"{bundle.path} has no {self.title}; build one with build-engine MODEL -o {bundle.path} {self.option}"
            )
        return tuple(names)

    def from_engines(self, engines: dict[str, Component]) -> Any:
        found = [engine for engine in engines.values() if isinstance(engine, self.kind)]
        return found[0] if len(found) == 1 else self.several(found)

    def accept(self, pipeline: str, value: Any) -> Any:
        """The constructor's value as the pipeline holds it (a list of several becomes diffusers' wrapper)."""
        if value is None:
            raise BundleError(
                f"{pipeline} needs `{self.name}`; load it with {pipeline}.from_pretrained(bundle) from a bundle "
                f"built with build-engine {self.option.split()[0]}"
            )
        if isinstance(value, list | tuple):
            value = value[0] if len(value) == 1 else self.several(list(value))
        return value

    def engines(self, value: Any) -> dict[str, Component]:
        return {engine.name: engine for engine in self.members(value or [])}
