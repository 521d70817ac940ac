"""The ``generator=`` argument of the pipelines: seeds, generators, lists of them, and noise drawing.

A pipeline accepts what diffusers accepts, plus plain seeds:

- ``None``: a fresh ``numpy.random.Generator`` (not reproducible);
- an ``int``: ``TorchCompatibleGenerator(seed)``, which draws what ``torch.Generator("cpu")
  .manual_seed(seed)`` draws, so a seed copied from a diffusers script gives diffusers' picture;
- a ``torch.Generator`` (where torch is installed): drawn with ``torch.randn(shape, generator=g,
  dtype=torch.float32)`` exactly as diffusers' ``randn_tensor`` draws, then handed over as an array
  (recognised by its type, so this module never imports torch);
- any object with ``standard_normal(size=...)`` (``numpy.random.Generator``, ``cupy.random.Generator``,
  ``TorchCompatibleGenerator``);
- a list of the above, one per image: row ``i`` of every draw comes from generator ``i`` (as diffusers'
  ``randn_tensor`` does with a list).

:class:`NoiseSource` wraps that argument so that every draw (initial latents, VAE sampling, scheduler
noise) lands in the pipeline's array module (NumPy or CuPy).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError, InputTypeError

from .torch_generator import TorchCompatibleGenerator

GeneratorLike = Any  # int | TorchCompatibleGenerator | numpy/cupy Generator | list of those | None


def as_generator(generator: Any) -> Any:
    """One generator object from ``None``, an int seed, or a generator (returned as is)."""
    if generator is None:
        return np.random.default_rng()
    if isinstance(generator, bool):
        raise InputTypeError("generator must be an int seed or a generator object, not a bool")
    if isinstance(generator, int | np.integer):
        return TorchCompatibleGenerator(int(generator))
    if is_torch_generator(generator):
        return TorchGeneratorDraws(generator)
    if not callable(getattr(generator, "standard_normal", None)):
        raise InputTypeError(
            f"generator must be an int seed, a torch.Generator, a TorchCompatibleGenerator, a "
            f"numpy.random.Generator or a list of them (one per image), got {type(generator).__name__}"
        )
    return generator


def is_torch_generator(value: Any) -> bool:
    """Whether ``value`` is a ``torch.Generator`` (by its type: torch is not imported here)."""
    kind = type(value)
    return kind.__name__ == "Generator" and kind.__module__.split(".")[0] == "torch"


class TorchGeneratorDraws:
    """A caller's ``torch.Generator``, drawn from as diffusers' ``randn_tensor`` does: ``torch.randn(shape,
    generator=g, device=g.device, dtype=torch.float32)``, handed back as a NumPy array. The caller passed a
    torch object, so torch is already imported: it is taken from ``sys.modules``, never imported here."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self.torch = sys.modules["torch"]

    def standard_normal(self, size: int | Sequence[int] | None = None, dtype: Any = np.float32) -> Any:
        shape = (size,) if isinstance(size, int | np.integer) else tuple(size or ())
        torch = self.torch
        draw = torch.randn(shape, generator=self.generator, device=self.generator.device, dtype=torch.float32)
        return draw.cpu().numpy().astype(dtype, copy=False)

    def randn(self, shape: Sequence[int], dtype: Any = np.float32) -> Any:
        return self.standard_normal(size=tuple(shape), dtype=dtype)


def check_generator_list(generator: Any, batch_size: int) -> None:
    """Raise the error diffusers raises for a list of generators of the wrong length."""
    if isinstance(generator, list | tuple) and len(generator) != batch_size:
        raise InputError(
            f"You have passed a list of generators of length {len(generator)}, but requested an effective "
            f"batch size of {batch_size} (prompts x num_images_per_prompt). Make sure the batch size "
            "matches the length of the generators."
        )


class NoiseSource:
    """Standard normal draws in an array module, from one generator or one generator per batch row.

    ``standard_normal(size=shape)`` is the method schedulers call, so a ``NoiseSource`` is also what
    the pipelines hand to ``scheduler.step(..., generator=...)``.
    """

    def __init__(self, generator: GeneratorLike, xp: ModuleType = np, dtype: Any = np.float32) -> None:
        if isinstance(generator, list | tuple):
            if not generator:
                raise InputError("generator is an empty list: pass one generator (or seed) per image")
            self.generators: list[Any] | None = [as_generator(g) for g in generator]
            self.generator: Any = None
        else:
            self.generators = None
            self.generator = as_generator(generator)
        self.xp = xp
        self.dtype = np.dtype(dtype)

    @property
    def is_list(self) -> bool:
        return self.generators is not None

    def take(self, count: int) -> NoiseSource:
        """The source for the first ``count`` rows (diffusers encodes a smaller image batch with the first
        generators of a list)."""
        if self.generators is None or count == len(self.generators):
            return self
        source = NoiseSource.__new__(NoiseSource)
        source.generators, source.generator = self.generators[:count], None
        source.xp, source.dtype = self.xp, self.dtype
        return source

    def standard_normal(self, size: int | Sequence[int] | None = None, dtype: Any = None) -> Any:
        shape = (size,) if isinstance(size, int | np.integer) else tuple(size or ())
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if self.generators is None:
            return self._to_xp(self.generator.standard_normal(size=shape), dtype)
        if not shape or shape[0] != len(self.generators):
            raise InputError(
                f"a list of {len(self.generators)} generators draws one batch row each, but a draw of shape "
                f"{shape} was asked for"
            )
        row_shape = (1, *shape[1:])
        rows = [self._to_xp(g.standard_normal(size=row_shape), dtype) for g in self.generators]
        return self.xp.concatenate(rows, axis=0)

    def randn(self, shape: Sequence[int], dtype: Any = None) -> Any:
        """Alias of ``standard_normal`` with diffusers' ``randn_tensor`` argument order."""
        return self.standard_normal(size=tuple(shape), dtype=dtype)

    def _to_xp(self, values: Any, dtype: np.dtype) -> Any:
        values = values.astype(dtype, copy=False)
        if self.xp is np:
            return values.get() if hasattr(values, "get") else np.asarray(values)
        return self.xp.asarray(values)
