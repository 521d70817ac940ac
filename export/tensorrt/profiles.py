"""Optimization profiles: a (min, opt, max) range per named dim (batch, latent_height, ...), derived from a
manifest component's ``dims``, validated before any build, and turned into per-input shapes.

A profile is static when min == opt == max for every dim. Its name, used in the plan file name
``plans/<component>.<profile>.plan``, spells the ranges: ``b2-8_h32-96_w32-96`` (dynamic),
``b2_h64_w64`` (static); ``static`` when the component has no named dims.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sdrt.export.errors import OptionError
from sdrt.runtime.bundle.manifest import Manifest
from sdrt.runtime.bundle.records import ComponentRecord
from sdrt.runtime.components import Component, component_class
from sdrt.runtime.tensors import TensorSpec

Range = tuple[int, int, int]

_SHORT = {"batch": "b", "latent_height": "h", "latent_width": "w", "height": "H", "width": "W"}
_TERM = re.compile(r"^\s*(\d+|[A-Za-z_][A-Za-z0-9_]*)\s*$")


class ProfileError(OptionError):
    """A requested shape range the model cannot be built for (refused before building)."""


@dataclass(frozen=True)
class ShapeProfile:
    dims: Mapping[str, Range]

    @property
    def is_static(self) -> bool:
        return all(lo == hi for lo, _, hi in self.dims.values())

    @property
    def name(self) -> str:
        if not self.dims:
            return "static"
        parts = []
        for dim, (lo, _, hi) in self.dims.items():
            label = _SHORT.get(dim, re.sub(r"[^A-Za-z0-9]", "", dim))
            parts.append(f"{label}{lo}" if lo == hi else f"{label}{lo}-{hi}")
        return "_".join(parts)

    def as_record(self) -> dict[str, list[int]]:
        return {dim: list(r) for dim, r in self.dims.items()}

    def input_shapes(self, inputs: Mapping[str, TensorSpec]) -> dict[str, tuple[tuple[int, ...], ...]]:
        """``{input: (min_shape, opt_shape, max_shape)}`` from the manifest's symbolic input shapes."""
        shapes = {}
        for name, spec in inputs.items():
            per_dim = [_resolve(entry, self.dims, name) for entry in spec.shape]
            shapes[name] = tuple(tuple(r[i] for r in per_dim) for i in range(3))
        return shapes


def _resolve(entry: Any, dims: Mapping[str, Range], tensor: str) -> Range:
    """A shape entry (int, dim name, or product like ``"8*latent_height"``) as a (min, opt, max) range."""
    if isinstance(entry, int):
        return (entry, entry, entry)
    value = (1, 1, 1)
    for term in str(entry).split("*"):
        match = _TERM.match(term)
        if match is None:
            raise ProfileError(f"input {tensor!r}: cannot read shape entry {entry!r}")
        token = match.group(1)
        if token.isdigit():
            factor: Range = (int(token),) * 3
        elif token in dims:
            factor = dims[token]
        else:
            raise ProfileError(
                f"input {tensor!r}: dim {token!r} has no range in the profile (have {sorted(dims)})"
            )
        value = (value[0] * factor[0], value[1] * factor[1], value[2] * factor[2])
    return value


def used_dims(inputs: Mapping[str, TensorSpec]) -> list[str]:
    """The named dims the inputs' shapes use (output-only dims play no part in a profile)."""
    names: list[str] = []
    for spec in inputs.values():
        for entry in spec.shape:
            for term in str(entry).split("*") if isinstance(entry, str) else []:
                token = term.strip()
                if token and not token.isdigit() and token not in names:
                    names.append(token)
    return names


def _as_range(
    component: type[Component], dim: str, value: Sequence[int], manifest: Manifest, where: str
) -> Range:
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 2, 3):
        raise ProfileError(f"{where}: dim {dim!r} must be [min, max] or [min, opt, max], got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ProfileError(f"{where}: dim {dim!r} must hold integers, got {value!r}")
    if len(value) == 1:
        return (value[0],) * 3
    if len(value) == 2:
        lo, hi = value
        opt = (
            component.profile_opt(dim, lo, hi, manifest.shapes, manifest.vae_scale_factor) if lo <= hi else lo
        )
        return (lo, opt, hi)
    return (value[0], value[1], value[2])


def profile_for(
    record: ComponentRecord,
    manifest: Manifest,
    *,
    requested: Mapping[str, Sequence[int]] | None = None,
    static: bool = False,
) -> ShapeProfile:
    """The validated profile for ``component``: ``requested`` ranges, else the record's ``dims``.

    ``static`` collapses every range to its opt point. Raises :class:`ProfileError` with the dim and the
    rule broken (min <= opt <= max, pixel sizes multiples of 8, inside the exported range).
    """
    where = f"{record.name} profile"
    component = component_class(record.name, record.class_name)
    wanted = used_dims(record.inputs)

    def ranges(source: Mapping[str, Sequence[int]], label: str) -> dict[str, Range]:
        # a static export has fixed input shapes: its (fixed) dims then only name the plan
        keep = {d: v for d, v in source.items() if d in wanted} if wanted else dict(source)
        return {d: _as_range(component, d, v, manifest, label) for d, v in keep.items()}

    exported = ranges(record.dims, f"{record.name} manifest dims")
    dims = ranges(requested if requested is not None else record.dims, where)
    scale, multiple = manifest.vae_scale_factor, manifest.shapes.size_multiple
    for dim, (lo, opt, hi) in dims.items():
        if lo < 1:
            raise ProfileError(f"{where}: dim {dim!r} min must be >= 1, got {lo}")
        if not lo <= opt <= hi:
            raise ProfileError(
                f"{where}: dim {dim!r} needs min <= opt <= max, got min={lo} opt={opt} max={hi}"
            )
        pixels = scale if dim.startswith("latent_") else 1
        if dim.endswith(("height", "width")) and any((v * pixels) % multiple for v in (lo, opt, hi)):
            raise ProfileError(
                f"{where}: {dim} sizes must be multiples of {multiple} pixels, got {lo}..{hi} (opt {opt})"
            )
        if requested is not None and dim in exported:
            elo, _, ehi = exported[dim]
            if lo < elo or hi > ehi:
                raise ProfileError(
                    f"{where}: dim {dim!r} range {lo}..{hi} is outside the exported range {elo}..{ehi}; "
                    "re-export with a wider --min-size/--max-size/--max-batch"
                )
    missing = sorted(set(wanted or exported) - set(dims))
    if missing:
        raise ProfileError(f"{where}: no range for dim(s) {missing}")
    if static:
        dims = {d: (opt, opt, opt) for d, (_, opt, _) in dims.items()}
    return ShapeProfile(dims)
