"""Engine I/O: TensorRT data types as NumPy dtypes, tensor specs with their profile range, and the
checks made on inputs before a launch. Pure Python: works without a GPU or TensorRT installed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# TensorRT DataType member name -> NumPy dtype (the same names in tensorrt and tensorrt_rtx).
_TRT_TO_NUMPY: dict[str, np.dtype] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
}


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """NumPy dtype of a TensorRT ``DataType`` (member or its name); bf16/fp8/fp4 have none."""
    name = trt_dtype if isinstance(trt_dtype, str) else getattr(trt_dtype, "name", str(trt_dtype))
    name = name.rsplit(".", 1)[-1].upper()
    if name not in _TRT_TO_NUMPY:
        raise TypeError(
            f"TensorRT data type {name} has no NumPy/CuPy equivalent: export the model's I/O as "
            "float32, float16, int32 or int64"
        )
    return _TRT_TO_NUMPY[name]


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor. ``shape`` has -1 for dynamic axes; inputs carry their profile range."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    is_input: bool
    min_shape: tuple[int, ...] | None = None
    opt_shape: tuple[int, ...] | None = None
    max_shape: tuple[int, ...] | None = None

    @property
    def is_static(self) -> bool:
        return all(d >= 0 for d in self.shape) or (
            self.min_shape is not None and self.min_shape == self.max_shape
        )

    def allowed(self) -> str:
        """The accepted shapes, e.g. ``[1..4, 4, 32..96, 32..96]``."""
        if self.min_shape is None or self.max_shape is None:
            return str(list(self.shape))
        parts = [str(a) if a == b else f"{a}..{b}" for a, b in zip(self.min_shape, self.max_shape)]
        return "[" + ", ".join(parts) + "]"

    def accepts(self, shape: tuple[int, ...]) -> bool:
        if len(shape) != len(self.shape):
            return False
        if self.min_shape is None or self.max_shape is None:
            return all(want < 0 or want == got for want, got in zip(self.shape, shape))
        return all(lo <= got <= hi for lo, got, hi in zip(self.min_shape, shape, self.max_shape))


def check_feeds(inputs: Mapping[str, TensorSpec], feeds: Mapping[str, Any], *, where: str = "engine") -> None:
    """Raise a ``ValueError`` / ``TypeError`` naming the input and the allowed names, dtype or range."""
    missing = sorted(set(inputs) - set(feeds))
    unknown = sorted(set(feeds) - set(inputs))
    if missing or unknown:
        raise ValueError(
            f"{where}: inputs must be exactly {sorted(inputs)}; missing {missing}, unexpected {unknown}"
        )
    for name, spec in inputs.items():
        array = feeds[name]
        dtype = np.dtype(array.dtype)
        if dtype != spec.dtype:
            raise TypeError(
                f"{where}: input {name!r} must be {spec.dtype}, got {dtype} (cast it before the call)"
            )
        shape = tuple(int(d) for d in array.shape)
        if not spec.accepts(shape):
            raise ValueError(
                f"{where}: input {name!r} has shape {list(shape)}, outside the plan's profile {spec.allowed()}; "
                "build a plan whose profile covers it (build-engine --min-size/--max-size/--max-batch)"
            )


def specs_from_engine(engine: Any, trt: Any, profile_index: int = 0) -> dict[str, TensorSpec]:
    """Specs of a deserialized ``ICudaEngine`` (inputs with the range of optimization profile 0)."""
    specs: dict[str, TensorSpec] = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        ranges: tuple[Any, ...] = (None, None, None)
        if is_input:
            ranges = tuple(
                tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(name, profile_index)
            )
        specs[name] = TensorSpec(name, numpy_dtype(engine.get_tensor_dtype(name)), shape, is_input, *ranges)
    return specs


def specs_from_record(component: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, TensorSpec]:
    """Specs from the manifest: the component's I/O dtypes and the plan record's ``input_shapes``."""
    specs: dict[str, TensorSpec] = {}
    input_shapes = plan.get("input_shapes", {})
    for name, info in component.get("inputs", {}).items():
        lo, opt, hi = (tuple(s) for s in input_shapes[name])
        shape = tuple(a if a == b else -1 for a, b in zip(lo, hi))
        specs[name] = TensorSpec(name, np.dtype(info["dtype"]), shape, True, lo, opt, hi)
    for name, info in component.get("outputs", {}).items():
        shape = tuple(d if isinstance(d, int) else -1 for d in info.get("shape", []))
        specs[name] = TensorSpec(name, np.dtype(info["dtype"]), shape, False)
    return specs
