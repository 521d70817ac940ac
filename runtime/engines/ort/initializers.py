"""New values for some initializers of an ONNX Runtime engine's graph, without re-exporting or re-reading
the graph's other weights: ONNX Runtime takes replacements when a session is made
(``SessionOptions.add_initializer``). Run-time LoRA and textual inversion use it, each as a *source* of
values; the engine with every source's values in is one new session over the same file.

Where the engine opened this machine's cached graph (``session.py``: optimized at the *all* level, loaded
with optimizations off in about a second) and every replaced initializer is still there, as it was and
used, the new session opens that graph the same way; else it opens the bundle's graph at the *extended*
level (the *all* level's NCHWc convolutions would keep the weights as built), whose calls are about 15%
slower on a CPU.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.errors import ProviderNotAvailableError

from .session import session_options

logger = logging.getLogger(__name__)


class InitializerOverrides:
    """The values replacing initializers of an engine's graph, by source; the engine with them.

    While values are in, the engine as loaded is let go (a UNet's session holds its weights: GBs) and
    opened again, as at first, when the last source goes."""

    def __init__(self, base: Any) -> None:
        self.path: Path = base.path  # the bundle's graph
        self._base: Any = base
        self._recipe = {
            "provider": base.provider,
            "device_id": base.device_id,
            "name": base.name,
            "reuse_outputs": getattr(base, "_output_cache", None) is not None,
            "cuda_graph": bool(getattr(base, "cuda_graph", False)),
        }
        self._graph_path, self._ort = base.graph_path, base._ort
        self.sources: dict[str, dict[str, np.ndarray]] = {}
        self._base_values: dict[str, np.ndarray] = {}
        self._graphs: dict[str, set[str]] = {}
        self._unchanged: dict[str, bool] = {}

    def base_values(self, names: list[str]) -> dict[str, np.ndarray]:
        """The initializers ``names`` as built (read once from the bundle's graph, then kept)."""
        missing = [name for name in names if name not in self._base_values]
        if missing:
            self._base_values.update(read_initializers(self.path, missing))
        return {name: self._base_values[name] for name in names}

    def engine_with(self, source: str, values: dict[str, np.ndarray] | None) -> tuple[Any, dict]:
        """The engine with ``source``'s values replaced by ``values`` (None: none) and every other source's,
        and the sources to :meth:`commit` once the caller has swapped it in (nothing is changed here)."""
        sources = {k: v for k, v in {**self.sources, source: values}.items() if v}
        return self.engine_for(sources), sources

    def engine_for(self, sources: dict[str, dict[str, np.ndarray]]) -> Any:
        """The engine with exactly ``sources``' values in (a new session; the engine as loaded for none),
        changing nothing here: a pipeline call's own engine (a LoRA at the call's scale)."""
        if not any(sources.values()):
            return self._base if self._base is not None else self._reopen()
        merged = {name: value for values in sources.values() for name, value in values.items()}
        return self._open(merged)

    def commit(self, engine: Any, sources: dict[str, dict[str, np.ndarray]]) -> None:
        """``engine`` (from :meth:`engine_with`) is now the component's: keep the engine as loaded only
        when it is that one."""
        self.sources = sources
        self._base = None if sources else engine

    def _reopen(self) -> Any:
        from .engine import OrtEngine

        started = time.perf_counter()
        engine = OrtEngine(self.path, **self._recipe)
        logger.info(
            "%s: the bundle's own weights again in %.2f s", engine.name, time.perf_counter() - started
        )
        return engine

    def _open(self, values: dict[str, np.ndarray]) -> Any:
        from .engine import OrtEngine

        started = time.perf_counter()
        cached = self._graph_path != self.path and self._still_there(self._graph_path, values)
        ort = self._ort
        # not the *all* level on the bundle's graph: its NCHWc layout reorders convolution weights from the
        # graph's own values, ignoring the replacements (ONNX Runtime 1.32); *extended* runs as validated
        options = session_options(ort, "ORT_DISABLE_ALL" if cached else "ORT_ENABLE_EXTENDED")
        held = []
        for name, value in values.items():
            held.append(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value)))
            options.add_initializer(name, held[-1])
        engine = OrtEngine(self._graph_path if cached else self.path, session_options=options, **self._recipe)
        engine.path = self.path  # the bundle's graph, whatever file the session opened
        engine.initializer_values = held  # the session reads them: they must outlive it
        logger.info(
            "%s: %d initializers replaced in a new session (%s) in %.2f s",
            engine.name,
            len(values),
            "the cached graph" if cached else "the bundle's graph at the extended level",
            time.perf_counter() - started,
        )
        return engine

    def _still_there(self, graph: os.PathLike[str], values: dict[str, np.ndarray]) -> bool:
        """Every name an initializer of ``graph`` read by a node and holding the value as built: the *all*
        level reorders convolution weights for the CPU's vector width, sometimes under the same name."""
        key = os.fspath(graph)
        if key not in self._graphs:
            self._graphs[key] = _used_initializers(graph)
        used = self._graphs[key]
        if not all(name in used for name in values):
            return False
        fresh = [name for name in values if name not in self._unchanged]
        if fresh:
            cached = read_initializers(graph, fresh)
            for name in fresh:
                self._unchanged[name] = np.array_equal(cached[name], self.base_values([name])[name])
        return all(self._unchanged[name] for name in values)


def read_initializers(path: os.PathLike[str], names: list[str]) -> dict[str, np.ndarray]:
    """The values of ``names`` in the graph at ``path`` (external data read for those alone)."""
    onnx, numpy_helper = _onnx()
    model = onnx.load(os.fspath(path), load_external_data=False)
    wanted = set(names)
    found = {
        t.name: numpy_helper.to_array(t, base_dir=os.path.dirname(os.fspath(path)))
        for t in model.graph.initializer
        if t.name in wanted
    }
    missing = wanted - set(found)
    if missing:
        raise KeyError(f"{path} has no initializer {sorted(missing)[0]}")
    return found


def _used_initializers(path: os.PathLike[str]) -> set[str]:
    onnx, _ = _onnx()
    model = onnx.load(os.fspath(path), load_external_data=False)
    used = {name for node in model.graph.node for name in node.input}
    return {t.name for t in model.graph.initializer if t.name in used}


def _onnx() -> tuple[Any, Any]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise ProviderNotAvailableError(
            "replacing weights at run time (LoRA, textual inversion) reads the graph: pip install onnx"
        ) from error
    return onnx, numpy_helper
