"""OrtEngine: an ONNX graph run by ONNX Runtime, on CPU with NumPy or on CUDA with CuPy.

CPU (``provider="cpu"``): NumPy in, NumPy out, through ``InferenceSession.run``. Without
``session_options``, the session runs ONNX Runtime's *all* optimization level from a graph cached for this
machine (``session.py``; ``graph_path`` is the file opened).

CUDA (``provider="cuda"``): CuPy in, CuPy out, with no host round trip. Inputs are bound with IO
binding straight from the CuPy buffers (``bind_input`` with the data pointer, element type and shape;
NumPy inputs are copied to the GPU first). Outputs whose shape follows from the inputs' named dims are
bound to CuPy buffers; other outputs are allocated by ORT on the device and wrapped as CuPy arrays
that keep the ORT value alive (and if ORT rejects a bound shape, from then on ORT allocates them).
- By default each run's bound outputs are fresh arrays from CuPy's memory pool, so a result is never
  overwritten by a later run.
- ``reuse_outputs=True``: output buffers are allocated once per input shapes (``cuda.BufferCache``)
  and reused; a result is valid until the next run with the same shapes (the pipelines' components
  copy what they keep, so they can use this).
- ``cuda_graph=True``: ONNX Runtime's CUDA graph (provider option ``enable_cuda_graph``) for static
  shapes: fixed input and output buffers and one IO binding (``cuda.CudaGraphRunner``); the
  caller's arrays are copied into the fixed inputs and the captured graph is replayed. Outputs are the
  fixed buffers, overwritten by the next run. Every node must run on the CUDA provider (ORT refuses
  the session otherwise) and a run with other shapes raises.
ORT computes on one CUDA stream of the engine's (``user_compute_stream``); each run orders it after
the caller's current CuPy stream, and the caller's stream after it, with events: never a host
synchronization (``disable_synchronize_execution_providers``).
Threads: the CPU path runs concurrently (ONNX Runtime's ``run`` is thread-safe); the CUDA path's runs
share the IO binding's buffers, the output cache and the CUDA graph, so they take ``engine.lock`` (an
``RLock``; None on the CPU) one at a time.
The CUDA path is written to the onnxruntime-gpu API (1.17+) but cannot run on the CPU-only machines
where this project's CI runs; the CPU path is what the tests check, with the buffer bookkeeping of
``cuda`` tested on NumPy.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.engines.base import Engine
from sdrt.runtime.engines.providers import import_cupy, import_onnxruntime, preload_cuda_libraries
from sdrt.runtime.errors import BundleNotFoundError, InputError, ProviderNotAvailableError
from sdrt.runtime.tensors import TensorSpec

from .cuda import BufferCache, CudaGraphRunner, named_dims, resolve_shape, shape_key
from .session import open_cpu_session, open_session

if TYPE_CHECKING:
    from .initializers import InitializerOverrides

logger = logging.getLogger(__name__)

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
# ONNX TensorProto element types, as OrtValue.element_type() returns them
_PROTO_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_}
_PROTO_TYPES.update({10: np.float16, 11: np.float64})


class OrtEngine(Engine):
    """One ONNX file run by ONNX Runtime (``provider`` "cpu" or "cuda")."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        provider: str = "cpu",
        *,
        device_id: int = 0,
        session_options: Any = None,
        name: str | None = None,
        reuse_outputs: bool = False,
        cuda_graph: bool = False,
    ) -> None:
        if provider not in ("cpu", "cuda"):
            raise InputError(
                f"OrtEngine runs provider 'cpu' or 'cuda', not {provider!r} (TensorRT plans: TrtEngine)"
            )
        self.path = Path(path)
        self.name = name or self.path.stem
        self.provider = provider
        self.device_id = device_id
        if not self.path.is_file():
            raise BundleNotFoundError(f"{self.name}: ONNX file {self.path} does not exist")
        if (reuse_outputs or cuda_graph) and provider != "cuda":
            raise InputError(f"{self.name}: reuse_outputs and cuda_graph are options of provider 'cuda'")
        ort = self._ort = import_onnxruntime(provider)
        self._cupy: Any = None  # CuPy, imported for the CUDA provider only
        self._stream: Any = None
        self.initializer_values: list[Any] = []  # OrtValues a session with replaced initializers reads
        self._preallocate = True
        self.cuda_graph = cuda_graph
        self._output_cache: BufferCache | None = None
        self._graph: CudaGraphRunner | None = None
        if provider == "cpu" and session_options is None:
            self.session, self.graph_path = open_cpu_session(ort, self.path, name=self.name)
        else:
            providers = self._cuda_providers() if provider == "cuda" else ["CPUExecutionProvider"]
            self.session = open_session(ort, self.path, session_options, providers, name=self.name)
            self.graph_path = self.path
            if provider == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
                # ORT logs the library it could not load and falls back to the CPU: say so, do not run slowly
                raise ProviderNotAvailableError(
                    f"{self.name}: ONNX Runtime could not start its CUDA provider (its log above names the "
                    "missing CUDA or cuDNN library): pip install 'onnxruntime-gpu[cuda,cudnn]' or put the "
                    "CUDA 13 and cuDNN 9 libraries on LD_LIBRARY_PATH"
                )
        self.inputs = {a.name: _spec(a) for a in self.session.get_inputs()}
        self.outputs = {a.name: _spec(a) for a in self.session.get_outputs()}
        self._run_options = ort.RunOptions()
        # CPU: InferenceSession.run is thread-safe. CUDA: the IO binding, the output cache, the CUDA graph's
        # fixed buffers and the fallback flag are shared by every run: one run at a time (re-entrant, so a
        # component wrapper can hold it while it copies the outputs)
        self.lock: threading.RLock | None = threading.RLock() if provider == "cuda" else None
        if provider == "cuda":
            self._run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
            cp: Any = self._cupy
            if reuse_outputs:
                self._output_cache = BufferCache(lambda shape, dtype: cp.empty(shape, dtype=dtype))
            if cuda_graph:
                self._graph = CudaGraphRunner(
                    self.session,
                    name=self.name,
                    inputs=self.inputs,
                    outputs=self.outputs,
                    allocate=lambda shape, dtype: cp.empty(shape, dtype=dtype),
                    device_id=device_id,
                    run_options=self._run_options,
                )
        logger.debug("loaded %r on %s", self, provider)

    def _cuda_providers(self) -> list[Any]:
        """The CUDA provider on the engine's own stream (and device), CPU as ORT's fallback."""
        ort = self._ort
        self._cupy = import_cupy("cuda")
        preload_cuda_libraries(ort)
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ProviderNotAvailableError(
                "provider 'cuda' needs onnxruntime-gpu (CUDAExecutionProvider is missing from "
                f"{ort.get_available_providers()}): pip install 'sdrt[cuda]'"
            )
        with self._cupy.cuda.Device(self.device_id):
            self._stream = self._cupy.cuda.Stream(non_blocking=True)
        cuda_options = {"device_id": str(self.device_id), "user_compute_stream": str(self._stream.ptr)}
        if self.cuda_graph:
            cuda_options["enable_cuda_graph"] = "1"
        return [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]

    @property
    def xp(self) -> ModuleType:
        return self._cupy if self._cupy is not None else np

    def initializer_overrides(self) -> InitializerOverrides:
        """Initializers replaced in a new session over the same graph (``initializers.py``)."""
        from .initializers import InitializerOverrides

        return InitializerOverrides(self)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        if self._cupy is None:
            host = {k: v.get() if hasattr(v, "__cuda_array_interface__") else v for k, v in feeds.items()}
            arrays = self.check_inputs(host)
            values = self.session.run(self.output_names, arrays, self._run_options)
            return dict(zip(self.output_names, values))
        assert self.lock is not None
        with self.lock:
            return self._run_cuda(feeds)

    def _run_cuda(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        cp = self._cupy
        assert cp is not None
        with cp.cuda.Device(self.device_id):
            caller = cp.cuda.get_current_stream()
            self._stream.wait_event(caller.record())
            with self._stream:
                arrays = self.check_inputs(feeds)  # host arrays are copied on the engine's stream
                if self._graph is not None:
                    results = self._graph.run(arrays)
                    caller.wait_event(self._stream.record())
                    return results
                try:
                    results = self._bind_and_run(arrays, preallocate=self._preallocate)
                except Exception:
                    if not self._preallocate:
                        raise
                    # an output dim named like an input dim but sized differently: let ORT allocate
                    self._preallocate = False
                    results = self._bind_and_run(arrays, preallocate=False)
            caller.wait_event(self._stream.record())
        return results

    def _bind_and_run(self, arrays: Mapping[str, Any], *, preallocate: bool) -> dict[str, Any]:
        cp = self._cupy
        binding = self.session.io_binding()
        for name, array in arrays.items():
            binding.bind_input(
                name, "cuda", self.device_id, array.dtype.type, tuple(array.shape), array.data.ptr
            )
        dims = named_dims(self.inputs, arrays)
        shapes = {}
        for name, spec in self.outputs.items():
            shape = resolve_shape(spec.shape, dims) if preallocate else None
            if shape is not None and spec.dtype is not None:
                shapes[name] = (shape, spec.dtype)
        if self._output_cache is not None:
            owned = self._output_cache.get(shape_key(arrays), shapes)
        else:
            owned = {name: cp.empty(shape, dtype=dtype) for name, (shape, dtype) in shapes.items()}
        for name in self.outputs:
            if name not in owned:
                binding.bind_output(name, "cuda", self.device_id)
                continue
            out = owned[name]
            binding.bind_output(name, "cuda", self.device_id, out.dtype.type, tuple(out.shape), out.data.ptr)
        self.session.run_with_iobinding(binding, self._run_options)
        values = binding.get_outputs()
        return {
            name: owned[name] if name in owned else self._wrap(v)
            for name, v in zip(self.output_names, values)
        }

    def _wrap(self, value: Any) -> Any:
        """A CuPy view of an ORT-allocated device tensor, keeping the OrtValue alive."""
        cp = self._cupy
        if hasattr(value, "element_type"):  # onnxruntime >= 1.17: the ONNX TensorProto type
            dtype = np.dtype(_PROTO_TYPES[value.element_type()])
        else:
            dtype = np.dtype(_ORT_TYPES[value.data_type()])
        shape = tuple(value.shape())
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        memory = cp.cuda.UnownedMemory(value.data_ptr(), nbytes, value, self.device_id)
        return cp.ndarray(shape, dtype=dtype, memptr=cp.cuda.MemoryPointer(memory, 0))


def _spec(arg: Any) -> TensorSpec:
    dtype = _ORT_TYPES.get(arg.type)
    shape = tuple(d if isinstance(d, int) or d is None else str(d) for d in arg.shape)
    return TensorSpec(arg.name, np.dtype(dtype) if dtype is not None else None, shape)
