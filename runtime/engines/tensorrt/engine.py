"""``TrtEngine``: one TensorRT plan of a bundle, run on CuPy device arrays.

What needs what:

* Running (``run``) needs an NVIDIA GPU with its driver, CuPy, and the TensorRT module that built
  the plan: ``tensorrt`` >= 10 for plans built with full TensorRT (for that GPU), or TensorRT-RTX for
  plans built with it (GeForce/RTX compute capabilities 7.5, 8.0, 8.6, 8.9, 12.x; not 9.0 such as H100).
* Construction deserializes the plan, which already needs that GPU: with no GPU or driver it raises
  :class:`PlanLoadError` saying so.
* Before deserializing, and with no GPU, the plan record is checked: a plan built by another TensorRT
  module or version is refused with the ``build-engine`` command that rebuilds it; the same command ends
  every load failure (another GPU, damaged file). Input checks (names, dtypes, shapes against the
  profile: ``Engine.check_inputs``) and dtype mapping are plain Python.

TensorRT and CuPy are imported lazily; this module never imports torch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.bundle import Bundle, open_bundle
from sdrt.runtime.bundle.records import PlanRecord
from sdrt.runtime.engines.base import Engine
from sdrt.runtime.errors import ProviderNotAvailableError

from .bindings import ShapeBinding, bind_shape, run_binding
from .device import current_compute_capability
from .io import specs_from_engine
from .logger import make_logger
from .module import TrtModuleError, import_trt, is_rtx, module_label, module_version
from .plan import (
    PlanLoadError,
    check_plan_record,
    rebuild_command,
    select_plan,
    validity_problems,
)

log = logging.getLogger(__name__)


class TrtEngine(Engine):
    """Deserialized plan + execution context + one CUDA stream; outputs land in preallocated buffers.

    ``engine.run(feeds)`` takes ``{input name: cupy (or numpy) array}`` with the engine's input names and
    shapes inside its profile (dtypes are cast as every ``Engine`` casts them), and returns ``{output
    name: cupy array}``. The returned arrays are the engine's own buffers for that input shape: the next
    call with the same shapes overwrites them (copy to keep). Work is ordered after the caller's current
    CuPy stream and before its later work. ``cuda_graph=True`` captures one CUDA graph per distinct input
    shape on its first call and replays it afterwards (inputs are copied into fixed buffers first).
    Runs from several threads take ``engine.lock`` (an ``RLock``) one at a time: the context is not
    thread-safe.
    """

    def __init__(
        self,
        plan_path: Path | str,
        plan: PlanRecord,
        *,
        component: str | None = None,
        rebuild: str | None = None,
        trt_module: str | None = None,
        cuda_graph: bool = False,
        runtime_cache: Path | str | None = None,
    ) -> None:
        self.path = Path(plan_path)
        self.name = component or self.path.name.split(".")[0]
        self.plan = plan
        self.rebuild = rebuild or rebuild_command(None, self.path.parent.parent, self.name, plan.precision)
        try:
            self.trt = import_trt(trt_module or plan.trt_module)
        except TrtModuleError as error:
            raise PlanLoadError(
                f"{error}\n  or rebuild the plan with the TensorRT installed here:\n  {self.rebuild}"
            ) from error
        check_plan_record(plan, self.trt, rebuild=self.rebuild)
        if not self.path.is_file():
            raise PlanLoadError(f"plan file {self.path} is missing; build it:\n  {self.rebuild}")
        self._logger = make_logger(self.trt)
        self._runtime = self.trt.Runtime(self._logger)
        self._engine = self._deserialize()
        self.inputs, self.outputs = specs_from_engine(self._engine, self.trt)
        self._runtime_cache_path = Path(runtime_cache) if runtime_cache else None
        self._runtime_cache: Any = None
        self._context = self._create_context()
        self.cuda_graph = cuda_graph
        self._cp: Any = None
        self._stream: Any = None
        self._bindings: dict[tuple, ShapeBinding] = {}
        # one execution context, its bound buffers and CUDA graphs: one run at a time (re-entrant, so a
        # component wrapper can hold it while it copies the outputs)
        self.lock = threading.RLock()

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle | Path | str,
        component: str,
        *,
        dims: Mapping[str, int] | None = None,
        profile: str | None = None,
        **options: Any,
    ) -> TrtEngine:
        """The component's plan named ``profile``, or the one covering ``dims`` (``{"batch": 2, ...}``)."""
        if not isinstance(bundle, Bundle):
            bundle = open_bundle(bundle)
        record = bundle.record(component)
        _, plan = select_plan(record.plans, dims=dims, profile=profile)
        rebuild = rebuild_command(bundle.manifest.source.path, bundle.path, component, plan.precision)
        return cls(bundle.path / plan.file, plan, component=component, rebuild=rebuild, **options)

    def _deserialize(self) -> Any:
        data = self.path.read_bytes()
        problems = validity_problems(self._runtime, data, self.trt)
        engine = self._runtime.deserialize_cuda_engine(data)
        del data
        if engine is not None:
            return engine
        if current_compute_capability() is None:
            problems = ["no NVIDIA GPU or CUDA driver here: TensorRT plans load only on a GPU"]
        built = ", ".join(str(c) for c in self.plan.compute_capabilities) or "unknown"
        said = "\n    ".join(self._logger.take_errors()) or "(nothing)"
        raise PlanLoadError(
            f"{module_label(self.trt)} {module_version(self.trt)} cannot load plan {self.path} "
            f"(built with {self.plan.trt_module} {self.plan.trt_version} "
            f"for compute capability {built}; this GPU: {current_compute_capability() or 'none'}): "
            f"{'; '.join(problems) or 'deserialization failed'}.\n  TensorRT said:\n    {said}\n"
            f"  Rebuild it for this machine:\n  {self.rebuild}"
        )

    def _create_context(self) -> Any:
        if is_rtx(self.trt) and self._runtime_cache_path is not None:
            config = self._engine.create_runtime_config()
            self._runtime_cache = config.create_runtime_cache()
            if self._runtime_cache_path.is_file():
                loaded = self._runtime_cache.deserialize(self._runtime_cache_path.read_bytes())
                log.info(
                    "%s: runtime cache %s %s",
                    self.name,
                    self._runtime_cache_path,
                    "loaded" if loaded else "rejected",
                )
            config.set_runtime_cache(self._runtime_cache)
            context = self._engine.create_execution_context(config)
        else:
            context = self._engine.create_execution_context()
        if context is None:
            said = "; ".join(self._logger.take_errors()) or "no reason given"
            raise PlanLoadError(
                f"{self.path}: could not create an execution context ({said}); is the GPU out of memory?"
            )
        return context

    def _cupy(self) -> Any:
        with self.lock:
            return self._load_cupy()

    def _load_cupy(self) -> Any:
        if self._cp is None:
            try:
                import cupy
            except ImportError as error:
                raise ProviderNotAvailableError(
                    "TrtEngine runs on CuPy arrays: pip install 'sdrt[tensorrt]' (cupy-cuda12x)"
                ) from error
            self._cp = cupy
            self._stream = cupy.cuda.Stream(non_blocking=True)
        return self._cp

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self._run(feeds)

    def _run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        cp = self._cupy()
        arrays = self.check_inputs(feeds)
        key = tuple(arrays[name].shape for name in self.inputs)
        caller = cp.cuda.get_current_stream()
        self._stream.wait_event(caller.record())
        binding = self._bindings.get(key)
        if binding is None:
            binding = bind_shape(
                cp, self._context, self._stream, self.outputs, arrays, capture=self.cuda_graph
            )
            self._bindings[key] = binding
            log.debug("%s: bound shapes %s (cuda graph: %s)", self.name, key, binding.graph is not None)
        else:
            run_binding(cp, self._context, self._stream, binding, arrays)
        caller.wait_event(self._stream.record())
        return dict(binding.outputs)

    @property
    def xp(self) -> Any:
        """CuPy: the module of the arrays this engine returns (and takes)."""
        return self._cupy()

    def close(self) -> None:
        """Free the context, engine and buffers; save the TensorRT-RTX runtime cache if one was given."""
        if self._runtime_cache is not None and self._runtime_cache_path is not None:
            try:
                self._runtime_cache_path.write_bytes(bytes(self._runtime_cache.serialize()))
            except Exception as error:  # noqa: BLE001 - a cache is an optimization
                log.warning("%s: could not save runtime cache: %s", self.name, error)
        self._bindings.clear()
        self._context = None
        self._engine = None

    def __enter__(self) -> TrtEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
