"""Engine I/O: TensorRT data types as NumPy dtypes, and the engine's tensor specs with their profile
range (from a deserialized engine, or from the manifest). Pure Python: no GPU or TensorRT needed."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdrt.runtime.bundle.records import ComponentRecord, PlanRecord
from sdrt.runtime.errors import EngineError
from sdrt.runtime.tensors import TensorSpec

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
        raise EngineError(
            f"TensorRT data type {name} has no NumPy/CuPy equivalent: export the model's I/O as "
            "float32, float16, int32 or int64"
        )
    return _TRT_TO_NUMPY[name]


def specs_from_engine(
    engine: Any, trt: Any, profile_index: int = 0
) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
    """(inputs, outputs) of a deserialized ``ICudaEngine``, inputs with the range of profile 0."""
    inputs: dict[str, TensorSpec] = {}
    outputs: dict[str, TensorSpec] = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        shape = tuple(int(d) if int(d) >= 0 else None for d in engine.get_tensor_shape(name))
        dtype = numpy_dtype(engine.get_tensor_dtype(name))
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            profile = tuple(
                tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(name, profile_index)
            )
            inputs[name] = TensorSpec(name, dtype, shape, profile)  # type: ignore[arg-type]
        else:
            outputs[name] = TensorSpec(name, dtype, shape)
    return inputs, outputs


def specs_from_record(
    component: ComponentRecord, plan: PlanRecord
) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
    """(inputs, outputs) from the manifest: the component's I/O and the plan's ``input_shapes``."""
    inputs = {}
    for name, spec in component.inputs.items():
        low, opt, high = (tuple(s) for s in plan.input_shapes[name])
        shape = tuple(a if a == b else None for a, b in zip(low, high))
        inputs[name] = TensorSpec(name, spec.dtype, shape, (low, opt, high))
    outputs = {
        name: TensorSpec(name, spec.dtype, tuple(d if isinstance(d, int) else None for d in spec.shape))
        for name, spec in component.outputs.items()
    }
    return inputs, outputs
