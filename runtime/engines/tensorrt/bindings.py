"""Per-input-shape state of a TensorRT execution context: preallocated output buffers and, optionally,
a captured CUDA graph. Needs CuPy and a GPU (called by ``TrtEngine`` only when it runs)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdrt.runtime.errors import EngineError
from sdrt.runtime.tensors import TensorSpec

log = logging.getLogger(__name__)


@dataclass
class ShapeBinding:
    """Buffers for one set of input shapes. With a graph, inputs are copied into ``inputs`` first."""

    outputs: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    graph: Any = None


def _bind_addresses(context: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    for name, array in inputs.items():
        context.set_input_shape(name, tuple(array.shape))
        context.set_tensor_address(name, array.data.ptr)
    for name, array in outputs.items():
        context.set_tensor_address(name, array.data.ptr)


def _execute(context: Any, stream: Any) -> None:
    if not context.execute_async_v3(stream.ptr):
        raise EngineError("TensorRT execute_async_v3 failed (see the TensorRT log above)")


def bind_shape(
    cp: Any,
    context: Any,
    stream: Any,
    outputs: Mapping[str, TensorSpec],
    arrays: Mapping[str, Any],
    *,
    capture: bool,
) -> ShapeBinding:
    """Allocate outputs for these input shapes, run once, and capture a CUDA graph if asked."""
    for name, array in arrays.items():
        context.set_input_shape(name, tuple(array.shape))
    buffers = {}
    for name, spec in outputs.items():
        shape = tuple(int(d) for d in context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise EngineError(f"output {name!r} has a data-dependent shape {shape}; not supported")
        buffers[name] = cp.empty(shape, dtype=spec.dtype)
    binding = ShapeBinding(outputs=buffers)
    if capture:
        with stream:
            binding.inputs = {name: cp.empty_like(array) for name, array in arrays.items()}
            for name, array in arrays.items():
                binding.inputs[name][...] = array
    _bind_addresses(context, binding.inputs or arrays, buffers)
    _execute(context, stream)  # the real work of this call, and the warm-up before a capture
    if capture:
        binding.graph = _capture(context, stream)
    return binding


def run_binding(cp: Any, context: Any, stream: Any, binding: ShapeBinding, arrays: Mapping[str, Any]) -> None:
    if binding.graph is not None:
        with stream:
            for name, array in arrays.items():
                binding.inputs[name][...] = array
        binding.graph.launch(stream)
        return
    _bind_addresses(context, binding.inputs or arrays, binding.outputs)
    if binding.inputs:  # capture failed earlier: still use the fixed buffers
        with stream:
            for name, array in arrays.items():
                binding.inputs[name][...] = array
    _execute(context, stream)


def _capture(context: Any, stream: Any) -> Any:
    try:
        stream.begin_capture()
        try:
            _execute(context, stream)
        finally:
            graph = stream.end_capture()
    except Exception as error:  # noqa: BLE001 - capture is an optimization; run without it
        log.warning("CUDA graph capture failed (%s); running this shape without a graph", error)
        return None
    return graph
