"""``GraphSpec``: what one exported graph takes and returns, with the range of each named dim.

A component class makes it (``Component.graph``); the export traces and validates against it and
records it in the manifest; the runtime reads it back from the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sdrt.runtime.tensors import TensorSpec

Range = tuple[int, int]


@dataclass(frozen=True)
class GraphSpec:
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    dims: dict[str, Range]  # named dim -> (min, max)
    trace: dict[str, int]  # the size of each named dim the graph is traced at
    static: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # what random inputs need (vocabulary size...)
    # dims that follow from another one: dim -> (base dim, multiply, divide), rounded up (a UNet level's
    # latent_height_div2 from latent_height; a ControlNet's pixel height from its latent height)
    derived: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def with_derived(self, sizes: dict[str, int]) -> dict[str, int]:
        """``sizes`` with every derived dim computed from its base."""
        out = {k: v for k, v in sizes.items() if k not in self.derived}
        for dim, (base, mul, div) in self.derived.items():
            out[dim] = -(-out[base] * mul // div)
        return out

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

    def frozen(self) -> GraphSpec:
        """The static variant: every named dim replaced by its trace size."""

        def fix(specs: dict[str, TensorSpec]) -> dict[str, TensorSpec]:
            return {k: replace(s, shape=s.concrete(self.trace)) for k, s in specs.items()}

        dims = {k: (self.trace[k], self.trace[k]) for k in self.dims}
        return replace(self, inputs=fix(self.inputs), outputs=fix(self.outputs), dims=dims, static=True)

    @property
    def input_dims(self) -> set[str]:
        """The named dims the inputs use (output-only dims follow from them)."""
        return {d for spec in self.inputs.values() for d in spec.named_dims}

    def second_size(self, dim: str, lo: int, hi: int) -> int:
        """The second validation size of ``dim``: another batch, two prompt chunks, else the trace size."""
        if dim == "batch":
            return min(lo + 1, hi)
        if dim == "sequence":  # the UNet's prompt tokens with --prompt-chunks: 77 x 2
            return min(2 * lo, hi)
        return min(max(self.trace.get(dim, hi), lo), hi)

    def validation_sizes(self) -> list[dict[str, int]]:
        """Two sizes to validate at: (min batch, min size) and (another batch, another, non-square size).

        The second takes the trace sizes (the model's default); static graphs have one size.
        """
        if self.static:
            return [dict(self.trace)]
        first: dict[str, int] = {}
        second: dict[str, int] = {}
        for dim, (lo, hi) in self.dims.items():
            if dim not in self.input_dims or dim in self.derived:
                continue
            first[dim] = lo
            second[dim] = self.second_size(dim, lo, hi)
        # make the second size non-square where the width range allows, to catch swapped axes
        for h, w in (("latent_height", "latent_width"), ("height", "width")):
            if h in second and w in second and second[h] == second[w] and first[w] != second[w]:
                second[w] = first[w]
        if second == first:
            return [self.with_derived(first)]
        return [self.with_derived(first), self.with_derived(second)]
