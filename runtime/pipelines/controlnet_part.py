"""``ControlNetPart``: the ``controlnet`` part of the ControlNet pipelines (every ControlNet engine of the bundle;
one ControlNet, a list or a ``MultiControlNetModel``)."""

from __future__ import annotations

from sdrt.runtime.components import ControlNet, MultiControlNetModel

from .control import controlnet_list
from .several_engines_part import SeveralEnginesPart

ControlNetPart = SeveralEnginesPart(
    name="controlnet",
    kind=ControlNet,
    several=MultiControlNetModel,
    members=controlnet_list,
    listed=lambda bundle: bundle.manifest.controlnets,
    title="ControlNet",
    option="--controlnet CONTROLNET_DIR",
)
