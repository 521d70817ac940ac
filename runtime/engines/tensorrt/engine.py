"""``TrtEngine``: one TensorRT plan of a bundle, run on CuPy device arrays.

What needs what:

* Running (``__call__``) needs an NVIDIA GPU with its driver, CuPy, and the TensorRT module that built
  the plan: ``tensorrt`` >= 10 for plans built with full TensorRT (for that GPU), or TensorRT-RTX for
  plans built with it (GeForce/RTX compute capabilities 7.5, 8.0, 8.6, 8.9, 12.x; not 9.0 such as H100).
* Construction deserializes the plan, which already needs that GPU: with no GPU or driver it raises
  :class:`PlanLoadError` saying so.
* Before deserializing, and with no GPU, the plan record is checked: a plan built by another TensorRT
  module or version is refused with the ``build-engine`` command that rebuilds it; the same command ends
  every load failure (another GPU, damaged file). Input checks (names, dtypes, shapes against the
  profile; :func:`sdrt.runtime.trt_io.check_feeds`) and dtype mapping are plain Python.

TensorRT and CuPy are imported lazily; this module never imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.manifest import load_manifest
from .bindings import ShapeBinding, bind_shape, run_binding
from .device import current_compute_capability
from .io import TensorSpec, check_feeds, specs_from_engine
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


class TrtEngine:
    """Deserialized plan + execution context + one CUDA stream; outputs land in preallocated buffers.

    ``engine(feeds)`` takes ``{input name: cupy (or numpy) array}`` with exactly the engine's input names,
    dtypes and shapes inside its profile, and returns ``{output name: cupy array}``. The returned arrays
    are the engine's own buffers for that input shape: the next call with the same shapes overwrites them
    (copy to keep). Work is ordered after the caller's current CuPy stream and before its later work.
    ``cuda_graph=True`` captures one CUDA graph per distinct input shape on its first call and replays it
    afterwards (inputs are copied into fixed buffers first).
    """

    def __init__(
        self,
        plan_path: Path | str,
        *,
        plan_record: Mapping[str, Any] | None = None,
        component: str | None = None,
        manifest: Mapping[str, Any] | None = None,
        bundle_dir: Path | str | None = None,
        trt_module: str | None = None,
        cuda_graph: bool = False,
        runtime_cache: Path | str | None = None,
    ) -> None:
        self.path = Path(plan_path)
        self.name = component or self.path.name.split(".")[0]
        self.record = dict(plan_record or {})
        bundle = Path(bundle_dir) if bundle_dir is not None else self.path.parent.parent
        self.rebuild = rebuild_command(manifest, bundle, self.name, self.record)
        try:
            self.trt = import_trt(trt_module or self.record.get("trt_module"))
        except TrtModuleError as error:
            raise PlanLoadError(
                f"{error}\n  or rebuild the plan with the TensorRT installed here:\n  {self.rebuild}"
            ) from error
        check_plan_record(self.record, self.trt, rebuild=self.rebuild)
        if not self.path.is_file():
            raise PlanLoadError(f"plan file {self.path} is missing; build it:\n  {self.rebuild}")
        self._logger = make_logger(self.trt)
        self._runtime = self.trt.Runtime(self._logger)
        self._engine = self._deserialize()
        self.specs: dict[str, TensorSpec] = specs_from_engine(self._engine, self.trt)
        self.inputs = {n: s for n, s in self.specs.items() if s.is_input}
        self.outputs = {n: s for n, s in self.specs.items() if not s.is_input}
        self._runtime_cache_path = Path(runtime_cache) if runtime_cache else None
        self._runtime_cache: Any = None
        self._context = self._create_context()
        self.cuda_graph = cuda_graph
        self._cp: Any = None
        self._stream: Any = None
        self._bindings: dict[tuple, ShapeBinding] = {}

    @classmethod
    def from_bundle(
        cls,
        bundle_dir: Path | str,
        component: str,
        *,
        dims: Mapping[str, int] | None = None,
        profile: str | None = None,
        manifest: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TrtEngine:
        """The component's plan named ``profile``, or the one covering ``dims`` (``{"batch": 2, ...}``)."""
        bundle = Path(bundle_dir)
        if manifest is None:
            manifest = load_manifest(bundle).data
        manifest = getattr(manifest, "data", manifest)
        components = manifest.get("components") or {}
        if component not in components:
            raise LookupError(f"{bundle}: no component {component!r}; the bundle has {sorted(components)}")
        _, plan = select_plan(components[component].get("plans") or {}, dims=dims, profile=profile)
        return cls(
            bundle / plan["file"],
            plan_record=plan,
            component=component,
            manifest=manifest,
            bundle_dir=bundle,
            **options,
        )

    def _deserialize(self) -> Any:
        data = self.path.read_bytes()
        problems = validity_problems(self._runtime, data, self.trt)
        engine = self._runtime.deserialize_cuda_engine(data)
        del data
        if engine is not None:
            return engine
        if current_compute_capability() is None:
            problems = ["no NVIDIA GPU or CUDA driver here: TensorRT plans load only on a GPU"]
        built = ", ".join(str(c) for c in self.record.get("compute_capabilities", [])) or "unknown"
        said = "\n    ".join(self._logger.take_errors()) or "(nothing)"
        raise PlanLoadError(
            f"{module_label(self.trt)} {module_version(self.trt)} cannot load plan {self.path} "
            f"(built with {self.record.get('trt_module', '?')} {self.record.get('trt_version', '?')} "
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

    def check_inputs(self, feeds: Mapping[str, Any]) -> None:
        """Names, dtypes and shapes of ``feeds`` against the plan's profile (a clear error if outside)."""
        check_feeds(self.inputs, feeds, where=f"{self.name} plan {self.path.name}")

    def _cupy(self) -> Any:
        if self._cp is None:
            try:
                import cupy
            except ImportError as error:
                raise ImportError(
                    "TrtEngine runs on CuPy arrays: pip install 'sdrt[tensorrt]' (cupy-cuda12x)"
                ) from error
            self._cp = cupy
            self._stream = cupy.cuda.Stream(non_blocking=True)
        return self._cp

    def __call__(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        self.check_inputs(feeds)
        cp = self._cupy()
        arrays = {name: cp.ascontiguousarray(cp.asarray(feeds[name])) for name in self.inputs}
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

    run = __call__  # the name the other engines (``sdrt.runtime.engine.Engine``) use

    @property
    def xp(self) -> Any:
        """CuPy: the module of the arrays this engine returns."""
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
