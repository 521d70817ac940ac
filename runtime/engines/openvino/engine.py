"""``OpenVinoEngine``: one component's OpenVINO IR compiled for the CPU, NumPy arrays in and out.

The IR keeps the fp32 weights; the precision is OpenVINO's inference precision hint, chosen when the
engine is compiled: ``fp32``, ``bf16`` (on CPUs with AVX-512 BF16 or AMX; OpenVINO computes in f32
elsewhere), or ``auto``: bf16 where the CPU has it. Compiled models are cached (OpenVINO's model cache,
``<cache>/openvino/<fp32|bf16>``: ``engines/cache.py``), so a second load skips most of the compile.

An infer request serves one run at a time: each thread gets its own, so threads share the compiled model.
A run's outputs are the request's own arrays, valid until the same thread's next run (the pipelines'
components copy what they keep).

Static shapes (``static_shapes=True``, or ``SDRT_OPENVINO_STATIC_SHAPES=1`` in the environment): the IR is
compiled once per set of input shapes, reshaped to them, as optimum-intel's ``pipeline.reshape()`` and
FastSD CPU do. OpenVINO's CPU plugin plans a static graph once and runs it faster (an SD1.5-sized UNet call
5-15% on an AMX Xeon, BENCHMARKS.md); the first call at new shapes compiles (seconds, then the model cache),
and each kept shape holds its own copy of the weights, so only the ``STATIC_VARIANTS`` latest are kept.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.engines.base import Engine
from sdrt.runtime.engines.cache import cache_dir as engine_cache_dir
from sdrt.runtime.errors import BundleNotFoundError, EngineError, InputError, ProviderNotAvailableError
from sdrt.runtime.tensors import TensorSpec

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")
_HINTS = {"fp32": "f32", "bf16": "bf16"}
STATIC_ENV = "SDRT_OPENVINO_STATIC_SHAPES"
STATIC_VARIANTS = 2  # compiled shapes kept per engine: an image size with and without guidance, say


def static_shapes_from_env() -> bool:
    """``$SDRT_OPENVINO_STATIC_SHAPES``: 1/true/yes/on compiles each engine per input shapes."""
    value = os.environ.get(STATIC_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise InputError(f"{STATIC_ENV}={value!r}: set it to 1 (static shapes) or 0 (dynamic, the default)")


def import_openvino() -> ModuleType:
    try:
        return importlib.import_module("openvino")
    except ImportError as error:
        raise ProviderNotAvailableError(
            "provider 'openvino' needs OpenVINO, which is not installed: pip install 'sdrt[openvino]'"
        ) from error


@functools.cache
def shared_core() -> Any:
    """One ``ov.Core`` per process, as OpenVINO recommends: its CPU plugin and thread pool are shared by
    every compiled model."""
    return import_openvino().Core()


def cpu_has_bf16(core: Any) -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AVX-512 BF16 or AMX)."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def effective_precision(asked: str, cpu_bf16: bool) -> str:
    """The precision OpenVINO computes in for ``asked``: bf16 only where the CPU has it (``cpu_has_bf16``);
    elsewhere OpenVINO takes the bf16 hint and computes fp32."""
    return "bf16" if asked in ("bf16", "auto") and cpu_bf16 else "fp32"


class OpenVinoEngine(Engine):
    """An IR file (``.xml`` beside its ``.bin``) compiled for OpenVINO's CPU plugin."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        precision: str = "fp32",
        *,
        name: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        static_shapes: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        if precision not in PRECISIONS:
            raise InputError(
                f"{self.name}: OpenVINO precision {precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if not self.path.is_file():
            raise BundleNotFoundError(f"{self.name}: OpenVINO IR {self.path} does not exist")
        core = shared_core()
        self.precision = effective_precision(precision, cpu_has_bf16(core))
        self.static_shapes = static_shapes_from_env() if static_shapes is None else static_shapes
        self._config = {"INFERENCE_PRECISION_HINT": _HINTS[self.precision]}
        cache = Path(cache_dir) if cache_dir is not None else engine_cache_dir("openvino")
        if cache is not None and (folder := _cache_folder(cache, self.precision, self.name)) is not None:
            self._config["CACHE_DIR"] = str(folder)
        try:
            model = core.read_model(str(self.path))
            # static: nothing compiled until the first run gives the shapes
            self.compiled = None if self.static_shapes else core.compile_model(model, "CPU", self._config)
        except Exception as error:  # OpenVINO's own exception types: a damaged IR
            raise self._damaged(error) from error
        # the model's own names: compiling merges a tensor's names with those of the nodes it fuses into
        self.inputs = {p.get_any_name(): _spec(p) for p in model.inputs}
        self.outputs = {p.get_any_name(): _spec(p) for p in model.outputs}
        self._model: Any = model if self.static_shapes else None  # the IR, reshaped per variant
        self._variants: OrderedDict[tuple[tuple[int, ...], ...], Any] = OrderedDict()
        self._variants_lock = threading.Lock()
        self._local = threading.local()
        logger.debug("loaded %r (%s) on OpenVINO CPU", self, self.precision)

    def _damaged(self, error: Exception) -> EngineError:
        return EngineError(
            f"{self.name}: OpenVINO cannot load {self.path} ({str(error).strip().splitlines()[0]}); rebuild the "
            f"bundle with: build-engine MODEL_DIR -o {self.path.parent.parent} --backend openvino --force"
        )

    @classmethod
    def from_bundle(cls, bundle: Bundle, component: str, **options: Any) -> OpenVinoEngine:
        record = bundle.record(component).openvino
        if record is None:
            raise BundleNotFoundError(
                f"{bundle.path}: the {component} component has no OpenVINO IR; rebuild it with "
                f"build-engine {bundle.manifest.source.path} -o {bundle.path} --backend openvino"
            )
        return cls(bundle.path / record.file, record.precision, name=component, **options)

    @property
    def xp(self) -> ModuleType:
        return np

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        arrays = self.check_inputs(feeds)
        ordered = [arrays[name] for name in self.inputs]
        compiled = self.compiled if self.compiled is not None else self.static_variant(ordered)
        local = self._local
        if getattr(local, "compiled", None) is not compiled:  # this thread's request is for another variant
            local.compiled, local.request = compiled, compiled.create_infer_request()
        results = local.request.infer(ordered)
        return {name: results[port] for name, port in zip(self.outputs, compiled.outputs)}

    def static_variant(self, arrays: list[Any]) -> Any:
        """The IR compiled for exactly these inputs' shapes (compiled now if it is not among the kept ones)."""
        shapes = tuple(tuple(int(d) for d in a.shape) for a in arrays)
        with self._variants_lock:
            compiled = self._variants.pop(shapes, None)
            if compiled is None:
                logger.info("%s: compiling OpenVINO's graph for input shapes %s", self.name, shapes)
                model = self._model.clone()
                try:
                    model.reshape({name: list(shape) for name, shape in zip(self.inputs, shapes)})
                except Exception as error:  # a graph that does not take these shapes statically
                    logger.warning(
                        "%s: static shapes %s refused (%s); dynamic shapes", self.name, shapes, error
                    )
                    model = self._model
                try:
                    compiled = shared_core().compile_model(model, "CPU", self._config)
                except Exception as error:
                    raise self._damaged(error) from error
            self._variants[shapes] = compiled  # the latest used last
            while len(self._variants) > STATIC_VARIANTS:
                self._variants.popitem(last=False)
            return compiled

    @property
    def static_variants(self) -> list[tuple[tuple[int, ...], ...]]:
        """The input shapes compiled and kept (static shapes), the least recently used first."""
        return list(self._variants)


def _cache_folder(cache: Path, precision: str, name: str) -> Path | None:
    """``<cache>/<precision>``: OpenVINO's cache key is the model and the plugin's caching properties, which
    leave out the inference precision, so one folder for all precisions hands a bf16 compile the fp32 blob.
    On CPUs with AMX that blob, imported under the bf16 hint, gives NaN (the CLIP text encoder: every row)."""
    folder = cache / precision
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a cache is an optimization: compile without it
        logger.debug("%s: no OpenVINO model cache at %s", name, folder)
        return None
    return folder


def _spec(port: Any) -> TensorSpec:
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), np.dtype(port.get_element_type().to_dtype()), shape)
