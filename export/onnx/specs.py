"""I/O specifications of the exported components: names, dtypes, named dims and their ranges.

The names are fixed by DESIGN.md; the runtime reads them back from the manifest. A spec also says
how to make random inputs of a given size for tracing and validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int | str, ...]


@dataclass
class ComponentSpec:
    """What one exported graph takes and returns, with the range of each named dim."""

    name: str
    component_class: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    dims: dict[str, tuple[int, int]]
    trace: dict[str, int]
    static: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The TorchScript exporter's ``dynamic_axes`` (empty when the graph is static)."""
        if self.static:
            return {}
        axes: dict[str, dict[int, str]] = {}
        for name, spec in {**self.inputs, **self.outputs}.items():
            named = {i: d for i, d in enumerate(spec.shape) if isinstance(d, str)}
            if named:
                axes[name] = named
        return axes

    def concrete_shape(self, spec: TensorSpec, values: dict[str, int]) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else values[d] for d in spec.shape)

    def frozen(self, values: dict[str, int]) -> ComponentSpec:
        """The static variant: every named dim replaced by its value in ``values``."""

        def fix(specs: dict[str, TensorSpec]) -> dict[str, TensorSpec]:
            return {k: TensorSpec(s.dtype, self.concrete_shape(s, values)) for k, s in specs.items()}

        dims = {k: (values[k], values[k]) for k in self.dims}
        return ComponentSpec(
            self.name,
            self.component_class,
            fix(self.inputs),
            fix(self.outputs),
            dims,
            dict(values),
            True,
            self.extra,
        )

    def manifest_io(self) -> dict[str, dict]:
        def rec(specs: dict[str, TensorSpec]) -> dict:
            return {k: {"dtype": s.dtype, "shape": list(s.shape)} for k, s in specs.items()}

        return {"inputs": rec(self.inputs), "outputs": rec(self.outputs)}


def random_inputs(spec: ComponentSpec, values: dict[str, int], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed random inputs of the sizes in ``values``, each in the range the pipeline feeds."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for name, tensor in spec.inputs.items():
        shape = spec.concrete_shape(tensor, values)
        if name == "input_ids":
            vocab = int(spec.extra.get("vocab_size", 49408))
            eos = int(spec.extra.get("eos_token_id", vocab - 1))
            ids = rng.integers(0, max(vocab - 2, 1), size=shape)
            ids[:, 0] = int(spec.extra.get("bos_token_id", 0))
            ends = rng.integers(2, shape[1], size=shape[0])
            for row, end in enumerate(ends):
                ids[row, end:] = eos
            feeds[name] = ids.astype(np.int32)
        elif name == "timestep":
            feeds[name] = rng.uniform(0.0, 999.0, size=shape).astype(np.float32)
        elif name == "image":
            feeds[name] = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        elif name == "time_ids":
            height, width = values.get("latent_height", 64) * 8, values.get("latent_width", 64) * 8
            row = np.array([height, width, 0, 0, height, width], dtype=np.float32)
            feeds[name] = np.broadcast_to(row, shape).copy()
        else:
            feeds[name] = rng.standard_normal(size=shape).astype(np.float32)
    return feeds


def _batch_pair(lo: int, hi: int) -> tuple[int, int]:
    return lo, min(hi, lo + 1)


def validation_shapes(spec: ComponentSpec, *, opt: dict[str, int]) -> list[dict[str, int]]:
    """Two shapes to validate at: (min batch, min size) and (another batch, another non-square size).

    ``opt`` holds the preferred values (the model's default size); static graphs have one shape.
    """
    if spec.static:
        return [dict(spec.trace)]
    first: dict[str, int] = {}
    second: dict[str, int] = {}
    for dim, (lo, hi) in spec.dims.items():
        if dim not in _input_dims(spec):
            continue
        if dim == "batch":
            first[dim], second[dim] = _batch_pair(lo, hi)
            continue
        first[dim] = lo
        second[dim] = min(max(opt.get(dim, hi), lo), hi)
    # make the second shape non-square where the width range allows, to catch swapped axes
    for h, w in (("latent_height", "latent_width"), ("height", "width")):
        if h in second and w in second and second[h] == second[w] and first[w] != second[w]:
            second[w] = first[w]
    shapes = [first]
    if second != first:
        shapes.append(second)
    return shapes


def _input_dims(spec: ComponentSpec) -> set[str]:
    return {d for t in spec.inputs.values() for d in t.shape if isinstance(d, str)}
