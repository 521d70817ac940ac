"""``AdapterPart``: the ``adapter`` part of the T2I-Adapter pipelines (every adapter engine of the bundle; one
adapter, a list or a ``MultiAdapter``)."""

from __future__ import annotations

from sdrt.runtime.components import MultiAdapter, T2IAdapter

from .conditioners.adapter import adapter_list
from .several_engines_part import SeveralEnginesPart

AdapterPart = SeveralEnginesPart(
    name="adapter",
    kind=T2IAdapter,
    several=MultiAdapter,
    members=adapter_list,
    listed=lambda bundle: bundle.manifest.adapters,
    title="T2I-Adapter",
    option="--adapter ADAPTER_DIR",
)
