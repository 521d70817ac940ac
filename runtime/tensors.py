"""``TensorSpec``: one graph input or output, as the manifest records it and as engines report it.

A shape holds ints for fixed dims, names (``"batch"``, ``"latent_height"``) for dims that vary, and
``None`` for a dim an engine reports as dynamic without a name. A TensorRT input also carries the
(min, opt, max) shapes of its optimization profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Dim = int | str | None
Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: np.dtype | None  # None: no NumPy equivalent (bfloat16)
    shape: tuple[Dim, ...]
    profile: tuple[Shape, Shape, Shape] | None = None

    @classmethod
    def from_record(cls, name: str, record: Mapping[str, Any]) -> TensorSpec:
        """From the manifest's ``{"dtype": "float32", "shape": ["batch", 4, ...]}``."""
        return cls(name, np.dtype(record["dtype"]), tuple(record["shape"]))

    def to_record(self) -> dict[str, Any]:
        return {"dtype": str(self.dtype), "shape": list(self.shape)}

    @property
    def named_dims(self) -> list[str]:
        return [d for d in self.shape if isinstance(d, str)]

    def concrete(self, sizes: Mapping[str, int]) -> Shape:
        """The shape with every named dim replaced by its size in ``sizes``."""
        return tuple(_size(d, sizes) for d in self.shape)

    def describe(self) -> str:
        """``sample float32[batch, 4, latent_height, latent_width]`` (with the profile range when known)."""
        dims = (
            self.allowed()
            if self.profile
            else "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        )
        return f"{self.name} {self.dtype if self.dtype is not None else '?'}{dims}"

    def allowed(self) -> str:
        """The accepted shapes, e.g. ``[1..4, 4, 32..96, 32..96]``."""
        if self.profile is None:
            return str(list(self.shape))
        low, _, high = self.profile
        return "[" + ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in zip(low, high)) + "]"

    def accepts(self, shape: Shape) -> bool:
        """Rank, fixed dims, and the profile range when there is one."""
        if len(shape) != len(self.shape):
            return False
        if self.profile is not None:
            low, _, high = self.profile
            return all(lo <= got <= hi for lo, got, hi in zip(low, shape, high))
        return all(
            not isinstance(want, int) or want < 0 or want == got for want, got in zip(self.shape, shape)
        )


def _size(dim: Dim, sizes: Mapping[str, int]) -> int:
    if isinstance(dim, int):
        return dim
    if dim is None:
        raise KeyError("a dim without a name has no size to look up")
    return sizes[dim]
