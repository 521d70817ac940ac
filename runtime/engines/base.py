"""Engine: the interface every backend gives (named input arrays -> dict of named output arrays).

An engine's arrays live in one array module, ``engine.xp``: NumPy for ONNX Runtime on CPU, CuPy for
ONNX Runtime on CUDA and for TensorRT. ``engine.inputs``/``engine.outputs`` describe each tensor
(``sdrt.runtime.tensors.TensorSpec``: name, dtype, shape; TensorRT inputs add their profile range).

Input checks before a run (``check_inputs``), each failing with an error that names the engine, the
input and what it expects:
- names: every input given, no unknown one;
- rank and fixed dimensions, and the profile range of a TensorRT input;
- dtypes: arrays are cast when the cast cannot lose meaning. Float to float is cast (a float32
  latent into an fp16 graph, as diffusers casts to the UNet's dtype), as are integers or bools into
  a float input (integer timesteps). Integers into integer inputs are cast when every value fits
  (int64 token ids into an int32 ``input_ids``). A float into an integer or bool input is refused:
  that is almost always a wrong argument, not a precision choice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from sdrt.runtime.errors import EngineError, InputError, InputTypeError
from sdrt.runtime.tensors import TensorSpec


class InitializerSource(Protocol):
    """What ``Engine.initializer_overrides`` gives (``engines/ort/initializers.py``): the values of each
    source (``"lora"``, ``"textual_inversion"``) and the engine with all of them in."""

    path: Any  # the bundle's graph file
    sources: dict[str, dict[str, np.ndarray]]

    def base_values(self, names: list[str]) -> dict[str, np.ndarray]: ...

    def engine_with(self, source: str, values: dict[str, np.ndarray] | None) -> tuple[Engine, dict]: ...

    def engine_for(self, sources: dict[str, dict[str, np.ndarray]]) -> Engine: ...

    def commit(self, engine: Engine, sources: dict[str, dict[str, np.ndarray]]) -> None: ...


class Engine(ABC):
    """Named inputs -> named outputs, with arrays of ``self.xp``."""

    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @property
    def input_names(self) -> list[str]:
        return list(self.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    @property
    @abstractmethod
    def xp(self) -> ModuleType:
        """The array module of the arrays this engine returns (numpy or cupy)."""

    @abstractmethod
    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Run once; ``feeds`` maps every input name to an array."""

    def __call__(self, **feeds: Any) -> dict[str, Any]:
        return self.run(feeds)

    def initializer_overrides(self) -> InitializerSource:
        """The values replacing some of this engine's graph initializers (run-time LoRA, textual inversion),
        and the engine with them. An engine whose weights are fixed when it is built refuses, naming itself."""
        raise EngineError(
            f"{self.name} runs on {type(self).__name__}, whose weights are fixed when the bundle is built; "
            "replacing them at run time needs ONNX Runtime (provider 'cpu' or 'cuda')"
        )

    def check_inputs(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Validate names, ranks and fixed dims; cast dtypes where safe (see the module docstring)."""
        missing = [n for n in self.inputs if n not in feeds]
        unknown = [n for n in feeds if n not in self.inputs]
        if missing or unknown:
            raise InputError(
                f"{self.name}: inputs {sorted(feeds)} do not match the engine's inputs "
                f"[{', '.join(s.describe() for s in self.inputs.values())}]"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
            )
        return {
            name: coerce_input(self.name, self.inputs[name], feeds[name], self.xp) for name in self.inputs
        }

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs.values())
        outs = ", ".join(s.describe() for s in self.outputs.values())
        return f"{type(self).__name__}({self.name!r}: {ins} -> {outs})"


def coerce_input(engine: str, spec: TensorSpec, value: Any, xp: ModuleType) -> Any:
    """One input as a contiguous array of ``xp`` with the spec's dtype, or a clear error."""
    array = xp.asarray(value)
    if array.ndim != len(spec.shape):
        raise InputError(
            f"{engine}: input {spec.name!r} expects rank {len(spec.shape)} ({spec.describe()}), "
            f"got shape {tuple(array.shape)}"
        )
    for axis, (want, got) in enumerate(zip(spec.shape, array.shape)):
        if isinstance(want, int) and want >= 0 and want != got:
            raise InputError(
                f"{engine}: input {spec.name!r} expects size {want} on axis {axis} ({spec.describe()}), "
                f"got shape {tuple(array.shape)}"
            )
    target = spec.dtype
    if target is not None and array.dtype != target:
        kind, want_kind = array.dtype.kind, target.kind
        if want_kind == "f" and kind in "fiub":
            pass  # float <- float | int | bool
        elif want_kind in "iu" and kind in "iub":
            if array.size and kind != "b":
                info = np.iinfo(target)
                low, high = int(array.min()), int(array.max())
                if low < info.min or high > info.max:
                    raise InputError(
                        f"{engine}: input {spec.name!r} is {target}, but values {low}..{high} do not fit"
                    )
        elif not (want_kind == "b" and kind == "b"):
            raise InputTypeError(
                f"{engine}: input {spec.name!r} expects {target}, got {array.dtype}: "
                f"pass an array of {target} ({spec.describe()})"
            )
        array = array.astype(target)
    if spec.profile is not None and not spec.accepts(tuple(int(d) for d in array.shape)):
        raise InputError(
            f"{engine}: input {spec.name!r} has shape {list(array.shape)}, outside the plan's profile "
            f"{spec.allowed()}; build a plan whose profile covers it (build-engine --min-size/--max-size/--max-batch)"
        )
    return xp.ascontiguousarray(array)
