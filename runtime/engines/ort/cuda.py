"""The CUDA side of ``OrtEngine``: device buffers allocated once per shape, and ONNX Runtime CUDA graphs.

``BufferCache``: output buffers keyed by the inputs' shapes and dtypes (:func:`shape_key`), allocated
on the first run with that key and handed out again on later runs, so a denoising loop allocates
nothing after its first step. A result is valid until the engine's next run with the same shapes
(the pipelines' components copy what they keep).

``CudaGraphRunner``: ONNX Runtime's CUDA graph (``enable_cuda_graph``) replays the kernels captured on
an early run, so every run must see the same shapes and the same device addresses. The runner owns
one input buffer and one output buffer per tensor and one IO binding made once; each run copies the
caller's arrays into the input buffers (on the engine's stream) and replays. It serves one shape set,
the static shapes of the bundle it was built for; other shapes raise, naming the ones it serves.

Nothing here imports CuPy or ONNX Runtime at module level; the allocation function is passed in, so
the bookkeeping runs (and is tested) with NumPy too.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.tensors import TensorSpec

logger = logging.getLogger(__name__)

ShapeKey = tuple[tuple[str, tuple[int, ...], str], ...]


def shape_key(arrays: Mapping[str, Any]) -> ShapeKey:
    """``((name, shape, dtype), ...)`` sorted by name: what fixes the shapes of an engine's outputs."""
    return tuple(
        (name, tuple(int(d) for d in arrays[name].shape), str(np.dtype(arrays[name].dtype)))
        for name in sorted(arrays)
    )


def named_dims(inputs: Mapping[str, TensorSpec], arrays: Mapping[str, Any]) -> dict[str, int]:
    """Sizes of the inputs' named (dynamic) dims, from the arrays given for them."""
    dims: dict[str, int] = {}
    for name, spec in inputs.items():
        for dim, size in zip(spec.shape, arrays[name].shape):
            if isinstance(dim, str):
                dims.setdefault(dim, int(size))
    return dims


def resolve_shape(shape: tuple[int | str | None, ...], dims: Mapping[str, int]) -> tuple[int, ...] | None:
    """The concrete shape of an output when every dim is fixed or named after an input dim, else None."""
    out = []
    for dim in shape:
        if isinstance(dim, int) and dim >= 0:
            out.append(dim)
        elif isinstance(dim, str) and dim in dims:
            out.append(dims[dim])
        else:
            return None
    return tuple(out)


def output_shapes(
    inputs: Mapping[str, TensorSpec], outputs: Mapping[str, TensorSpec], arrays: Mapping[str, Any]
) -> dict[str, tuple[tuple[int, ...], np.dtype]] | None:
    """Shape and dtype of every output for these inputs, or None when one cannot be known in advance."""
    dims = named_dims(inputs, arrays)
    specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for name, spec in outputs.items():
        shape = resolve_shape(spec.shape, dims)
        if shape is None or spec.dtype is None:
            return None
        specs[name] = (shape, spec.dtype)
    return specs


class BufferCache:
    """Named buffers allocated once per shape key; the ``max_keys`` most recently used keys are kept."""

    def __init__(self, allocate: Callable[[tuple[int, ...], np.dtype], Any], max_keys: int = 4) -> None:
        if max_keys < 1:
            raise InputError(f"max_keys must be at least 1, got {max_keys}")
        self._allocate = allocate
        self._max_keys = max_keys
        self._entries: OrderedDict[ShapeKey, dict[str, Any]] = OrderedDict()
        self.allocations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: ShapeKey, specs: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, Any]:
        """The buffers for ``key`` (made from ``specs`` on first use of the key)."""
        buffers = self._entries.get(key)
        if buffers is not None:
            self._entries.move_to_end(key)
            return buffers
        buffers = {name: self._allocate(shape, dtype) for name, (shape, dtype) in specs.items()}
        self.allocations += len(buffers)
        self._entries[key] = buffers
        if len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)
        return buffers


class CudaGraphRunner:
    """Runs an ``enable_cuda_graph`` session through fixed input/output buffers and one IO binding."""

    def __init__(
        self,
        session: Any,
        *,
        name: str,
        inputs: Mapping[str, TensorSpec],
        outputs: Mapping[str, TensorSpec],
        allocate: Callable[[tuple[int, ...], np.dtype], Any],
        device_id: int = 0,
        run_options: Any = None,
    ) -> None:
        self.session = session
        self.name = name
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self._allocate = allocate
        self.device_id = device_id
        self._run_options = run_options
        self.key: ShapeKey | None = None
        self.input_buffers: dict[str, Any] = {}
        self.output_buffers: dict[str, Any] = {}
        self._binding: Any = None
        self.runs = 0

    def prepare(self, arrays: Mapping[str, Any]) -> None:
        """Allocate the fixed buffers for these arrays' shapes (first run), or check they are the same."""
        key = shape_key(arrays)
        if self.key is not None:
            if key != self.key:
                raise InputError(
                    f"{self.name}: this engine runs a CUDA graph captured for inputs "
                    f"{_describe(self.key)}, got {_describe(key)}; a CUDA graph serves one set of static "
                    "shapes (load the engine without cuda_graph for other sizes)"
                )
            return
        specs = output_shapes(self.inputs, self.outputs, arrays)
        if specs is None:
            raise InputError(
                f"{self.name}: a CUDA graph needs every output shape known from the inputs, but "
                f"{[s.describe() for s in self.outputs.values()]} are not; build the bundle with --static"
            )
        self.input_buffers = {
            name: self._allocate(tuple(int(d) for d in array.shape), np.dtype(array.dtype))
            for name, array in arrays.items()
        }
        self.output_buffers = {name: self._allocate(shape, dtype) for name, (shape, dtype) in specs.items()}
        self.key = key

    def run(self, arrays: Mapping[str, Any]) -> dict[str, Any]:
        """Copy ``arrays`` into the fixed inputs, replay (or capture) the graph; returns the fixed outputs."""
        self.prepare(arrays)
        for name, array in arrays.items():
            self.input_buffers[name][...] = array  # a device copy on the current (the engine's) stream
        if self._binding is None:
            self._binding = self.session.io_binding()
            for name, buffer in self.input_buffers.items():
                self._binding.bind_input(
                    name, "cuda", self.device_id, buffer.dtype.type, tuple(buffer.shape), buffer.data.ptr
                )
            for name, buffer in self.output_buffers.items():
                self._binding.bind_output(
                    name, "cuda", self.device_id, buffer.dtype.type, tuple(buffer.shape), buffer.data.ptr
                )
        self.session.run_with_iobinding(self._binding, self._run_options)
        self.runs += 1
        return dict(self.output_buffers)


def _describe(key: ShapeKey) -> str:
    return ", ".join(f"{name} {dtype}{list(shape)}" for name, shape, dtype in key)
