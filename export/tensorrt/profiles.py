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

Range = tuple[int, int, int]

_SHORT = {"batch": "b", "latent_height": "h", "latent_width": "w", "height": "H", "width": "W"}
_TERM = re.compile(r"^\s*(\d+|[A-Za-z_][A-Za-z0-9_]*)\s*$")


class ProfileError(ValueError):
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

    def input_shapes(self, inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[tuple[int, ...], ...]]:
        """``{input: (min_shape, opt_shape, max_shape)}`` from the manifest's symbolic input shapes."""
        shapes = {}
        for name, info in inputs.items():
            per_dim = [_resolve(entry, self.dims, name) for entry in info["shape"]]
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
            factor: Range = (int(token),) * 3  # type: ignore[assignment]
        elif token in dims:
            factor = dims[token]
        else:
            raise ProfileError(
                f"input {tensor!r}: dim {token!r} has no range in the profile (have {sorted(dims)})"
            )
        value = tuple(a * b for a, b in zip(value, factor))  # type: ignore[assignment]
    return value


def _default_opt(component: str, dim: str, lo: int, hi: int, manifest: Mapping[str, Any]) -> int:
    """opt point: the bundle's default image size for spatial dims (in the dim's own units); for the
    batch, the smallest prompt batch (doubled for classifier-free guidance in the UNet and the text
    encoders, which see prompt and negative prompt together)."""
    shapes = manifest.get("shapes") or {}
    scale = (manifest.get("vae") or {}).get("scale_factor", 8)
    preferred = None
    if dim == "batch":
        first = (shapes.get("batch") or [None])[0]
        cfg = component == "unet" or component.startswith("text_encoder")
        preferred = lo if first is None else 2 * first if cfg else first
    elif dim.endswith(("height", "width")):
        axis = 0 if dim.endswith("height") else 1
        pixels = (shapes.get("default") or [None, None])[axis]
        if pixels is None:
            sample = (manifest.get("unet") or {}).get("sample_size")
            sample = sample[axis] if isinstance(sample, (list, tuple)) else sample
            pixels = sample * scale if isinstance(sample, int) else None
        if pixels is not None:
            preferred = pixels // scale if dim.startswith("latent_") else pixels
    if preferred is None:
        return lo
    return min(max(preferred, lo), hi)


def used_dims(inputs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The named dims the inputs' shapes use (output-only dims play no part in a profile)."""
    names: list[str] = []
    for info in inputs.values():
        for entry in info.get("shape", []):
            for term in str(entry).split("*") if isinstance(entry, str) else []:
                token = term.strip()
                if token and not token.isdigit() and token not in names:
                    names.append(token)
    return names


def _as_range(
    component: str, dim: str, value: Sequence[int], manifest: Mapping[str, Any], where: str
) -> Range:
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 2, 3):
        raise ProfileError(f"{where}: dim {dim!r} must be [min, max] or [min, opt, max], got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ProfileError(f"{where}: dim {dim!r} must hold integers, got {value!r}")
    if len(value) == 1:
        return (value[0],) * 3  # type: ignore[return-value]
    if len(value) == 2:
        lo, hi = value
        return (lo, _default_opt(component, dim, lo, hi, manifest) if lo <= hi else lo, hi)
    return tuple(value)  # type: ignore[return-value]


def profile_for(
    component: str,
    record: Mapping[str, Any],
    manifest: Mapping[str, Any],
    *,
    requested: Mapping[str, Sequence[int]] | None = None,
    static: bool = False,
) -> ShapeProfile:
    """The validated profile for ``component``: ``requested`` ranges, else the record's ``dims``.

    ``static`` collapses every range to its opt point. Raises :class:`ProfileError` with the dim and the
    rule broken (min <= opt <= max, pixel sizes multiples of 8, inside the exported range).
    """
    where = f"{component} profile"
    wanted = used_dims(record.get("inputs") or {})

    def ranges(source: Mapping[str, Sequence[int]], label: str) -> dict[str, Range]:
        # a static export has fixed input shapes: its (fixed) dims then only name the plan
        keep = {d: v for d, v in source.items() if d in wanted} if wanted else dict(source)
        return {d: _as_range(component, d, v, manifest, label) for d, v in keep.items()}

    exported = ranges(record.get("dims") or {}, f"{component} manifest dims")
    dims = ranges(requested if requested is not None else record.get("dims") or {}, where)
    scale = (manifest.get("vae") or {}).get("scale_factor", 8)
    multiple = (manifest.get("shapes") or {}).get("size_multiple", 8)
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
