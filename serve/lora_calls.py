"""The replica's side of ``<lora:NAME:WEIGHT>``: each pipeline call runs the LoRA set of its requests.

A replica runs one call at a time, so the set is put on the engines (run-time LoRA: ``set_adapters`` with
each LoRA's weight) just before the call and stays until a call with another set; a call with none runs the
bundle's own weights (``disable_lora``). Each file is read once (an adapter named after it) and read again
if it changed on disk. Bundles whose engines hold their weights fixed (OpenVINO IR, TensorRT plans) cannot
take a LoRA per request: the request is refused (400) with the fix, ``build-engine --lora``.
"""

from __future__ import annotations

import os
from typing import Any

from sdrt.runtime.errors import EngineError, InputError

from .loras import LoraUse


class CallLoras:
    """The LoRA adapters loaded on one pipeline's engines and the set they run now."""

    def __init__(self, pipe: Any, model: str) -> None:
        self.pipe = pipe
        self.model = model
        self.loaded: dict[str, tuple[str, int]] = {}  # adapter name -> (file, mtime_ns)
        self.current: tuple[LoraUse, ...] | None = ()  # None: unknown (a change failed half way)

    def apply(self, uses: tuple[LoraUse, ...]) -> None:
        """Make ``uses`` the set the next call runs (nothing to do if it already is)."""
        if uses == self.current:
            return
        self.current = None
        try:
            for use in uses:
                self._load(use)
            if uses:
                self.pipe.set_adapters([u.name for u in uses], [u.weight for u in uses])
            else:
                self.pipe.disable_lora()
        except EngineError as error:
            raise InputError(
                f"model {self.model} cannot apply <lora:...> per request: its engines hold their weights fixed "
                f"({error}); build a bundle with the LoRA merged (build-engine --lora FILE:WEIGHT) and serve it"
            ) from None
        self.current = uses

    def _load(self, use: LoraUse) -> None:
        stamp = (use.path, os.stat(use.path).st_mtime_ns)
        if self.loaded.get(use.name) == stamp:
            return
        if use.name in self.loaded:
            self.pipe.delete_adapters(use.name)
            del self.loaded[use.name]
        self.pipe.load_lora_weights(use.path, adapter_name=use.name)
        self.loaded[use.name] = stamp
