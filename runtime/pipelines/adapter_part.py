"""``AdapterPart``: the ``adapter`` part of the T2I-Adapter pipelines, as ``from_pretrained`` loads it (every
adapter engine the bundle has: one, or a ``MultiAdapter``), as the constructor takes it (one adapter, a list or
a ``MultiAdapter``) and as ``pipe.engines`` lists it."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.components import Component, MultiAdapter, T2IAdapter
from sdrt.runtime.errors import BundleError

from .conditioners.adapter import adapter_list


class AdapterPart:
    """The part loader of ``adapter`` (the methods ``DiffusionPipeline`` calls on each of ``part_loaders``)."""

    name = "adapter"

    @staticmethod
    def components(bundle: Bundle) -> tuple[str, ...]:
        """The bundle's adapter components (a clear error where it has none)."""
        if not bundle.manifest.adapters:
            raise BundleError(
                f"{bundle.path} has no T2I-Adapter; build one with build-engine MODEL -o {bundle.path} "
                "--adapter ADAPTER_DIR"
            )
        return tuple(bundle.manifest.adapters)

    @staticmethod
    def from_engines(engines: dict[str, Component]) -> Any:
        adapters = [e for e in engines.values() if isinstance(e, T2IAdapter)]
        return adapters[0] if len(adapters) == 1 else MultiAdapter(adapters)

    @staticmethod
    def accept(pipeline: str, adapter: Any) -> Any:
        """The constructor's ``adapter`` as ``pipe.adapter`` holds it (a list becomes a ``MultiAdapter``)."""
        if adapter is None:
            raise BundleError(
                f"{pipeline} needs `adapter`; load it with {pipeline}.from_pretrained(bundle) from a bundle built "
                "with build-engine --adapter"
            )
        if isinstance(adapter, list | tuple):
            adapter = adapter[0] if len(adapter) == 1 else MultiAdapter(adapter)
        return adapter

    @staticmethod
    def engines(adapter: Any) -> dict[str, Component]:
        return {a.name: a for a in adapter_list(adapter or [])}
