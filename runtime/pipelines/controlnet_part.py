"""``ControlNetPart``: the ``controlnet`` part of the ControlNet pipelines, as ``from_pretrained`` loads it
(every ControlNet engine the bundle has), as the constructor takes it (one ControlNet, a list or a
``MultiControlNetModel``) and as ``pipe.engines`` lists it. A pipeline names it in ``part_loaders``; the base
class calls it (composition, not a mixin)."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.components import Component, ControlNet, MultiControlNetModel
from sdrt.runtime.errors import BundleError

from .control import controlnet_list


class ControlNetPart:
    """The part loader of ``controlnet`` (the methods ``DiffusionPipeline`` calls on each of ``part_loaders``)."""

    name = "controlnet"

    @staticmethod
    def components(bundle: Bundle) -> tuple[str, ...]:
        """The bundle's ControlNet components (a clear error where it has none)."""
        if not bundle.manifest.controlnets:
            raise BundleError(
                f"{bundle.path} has no ControlNet; build one with build-engine MODEL -o {bundle.path} "
                "--controlnet CONTROLNET_DIR"
            )
        return tuple(bundle.manifest.controlnets)

    @staticmethod
    def from_engines(engines: dict[str, Component]) -> Any:
        nets = [e for e in engines.values() if isinstance(e, ControlNet)]
        return nets[0] if len(nets) == 1 else MultiControlNetModel(nets)

    @staticmethod
    def accept(pipeline: str, controlnet: Any) -> Any:
        """The constructor's ``controlnet`` as ``pipe.controlnet`` holds it."""
        if controlnet is None:
            raise BundleError(
                f"{pipeline} needs `controlnet`; load it with {pipeline}.from_pretrained(bundle) from a bundle "
                "built with build-engine --controlnet"
            )
        if isinstance(controlnet, list | tuple):
            controlnet = controlnet[0] if len(controlnet) == 1 else MultiControlNetModel(controlnet)
        return controlnet

    @staticmethod
    def engines(controlnet: Any) -> dict[str, Component]:
        return {net.name: net for net in controlnet_list(controlnet or [])}
