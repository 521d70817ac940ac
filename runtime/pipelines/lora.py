"""LoRA at run time, torch-free, with diffusers' names: ``load_lora_weights``, ``set_adapters``,
``unload_lora_weights``, ``fuse_lora`` / ``unfuse_lora``, ``cross_attention_kwargs={"scale": s}``.

The UNet's and text encoders' weights are initializers of their ONNX graphs; build-engine records which
initializer holds each weight (``lora.weights``). Applying LoRA is: the merged weights
``W + sum(weight_i * scale * up_i @ down_i * alpha_i / rank_i)`` computed with NumPy from the weights as
built (read once per touched layer, kept once whatever the number of adapters), handed to a new ONNX
Runtime session over the same graph (the engine's ``initializer_overrides``). Every change starts from the base
weights, so switching A -> B leaves nothing of A, and unloading gives back the very engine loaded at
first. TensorRT plans and OpenVINO IR hold their weights fixed: there, ``build-engine --lora`` merges.

Every call runs the adapters and weights it started with (``call_state``: the engines are fixed at its
start); loading, unloading, fusing or ``set_adapters`` in another thread changes the calls that start
later. A call's ``cross_attention_kwargs={"scale": s}`` (s != 1) runs on an engine merged at ``s`` for
that call alone (``CallScales``), kept for the next calls with the same adapters, weights and scale.
``fuse_lora`` fuses each adapter once per component, as diffusers (PEFT's ``check_adapters_to_merge``):
fusing again what is fused does nothing.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

import numpy as np

from sdrt.runtime.components.base import ENGINE_CHANGES, ENGINE_SWAPS, pin_engine
from sdrt.runtime.errors import InputError
from sdrt.runtime.lora.files import read_lora
from sdrt.runtime.lora.weights import WeightMap, merged_values, resolve

from .checks import real
from .lora_scales import LORA_COMPONENTS, CallScales

logger = logging.getLogger(__name__)

Placed = dict[str, list]  # component -> [(Target, LoraLayer)]


@dataclass(frozen=True)
class LoraState:
    """What is loaded and what the engines hold now (replaced whole on every change)."""

    adapters: dict[str, Placed] = field(default_factory=dict)
    active: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    enabled: bool = True
    fused: tuple[tuple[str, Placed, float], ...] | None = (
        None  # (adapter, its fused layers, weight) until unfuse
    )

    def contributions(self, scale: float = 1.0) -> list[tuple[Placed, float]]:
        """Each adapter's layers and weight at a call's ``scale`` (fused weights do not scale, as in PEFT)."""
        if self.fused is not None:
            return [(placed, weight) for _, placed, weight in self.fused]
        if not self.enabled:
            return []
        return [(self.adapters[name], weight * scale) for name, weight in zip(self.active, self.weights)]

    def scales(self) -> bool:
        """Whether a call's scale changes what the engines compute."""
        return bool(self.active) and self.fused is None and self.enabled


@dataclass(frozen=True)
class LoraSnapshot:
    """The LoRA state a call started with, and each LoRA component's other replaced values then (the
    embeddings of textual inversion), from which an engine at the call's scale is made."""

    state: LoraState
    others: dict[str, dict[str, dict[str, np.ndarray]]]  # component -> source -> initializer values


F = TypeVar("F", bound=Callable[..., Any])


def _one_change(method: F) -> F:
    """A change of the LoRA state, from reading it to swapping the engines, one at a time."""

    @functools.wraps(method)
    def change(self: Any, *args: Any, **kwargs: Any) -> Any:
        with ENGINE_CHANGES:
            return method(self, *args, **kwargs)

    return cast(F, change)


class LoraLoader:
    """diffusers' LoRA loader methods for an sdrt pipeline whose UNet and text encoders run on ONNX Runtime;
    the pipeline holds one (``pipe.lora_loader``) and its methods of these names delegate to it."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self._lora = LoraState()
        self._scales = CallScales()

    @property
    def engines(self) -> dict[str, Any]:
        """The pipeline's engines (its UNet and text encoders are the ones LoRA changes)."""
        return dict(self.pipe.engines)

    @_one_change
    def load_lora_weights(
        self,
        pretrained_model_name_or_path_or_dict: str | os.PathLike[str] | dict[str, Any],
        adapter_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Load a LoRA (a ``.safetensors`` file, a folder with diffusers' ``pytorch_lora_weights.safetensors``
        or ``weight_name``, or a dict of arrays; diffusers/PEFT or kohya/A1111 keys) as ``adapter_name``
        (default ``default_N``), and make it the active adapter at weight 1, as diffusers does."""
        weight_name = kwargs.pop("weight_name", None)
        if kwargs:
            raise InputError(
                f"load_lora_weights: sdrt takes a file, adapter_name and weight_name, not {sorted(kwargs)}"
            )
        state = self._lora
        name = adapter_name or f"default_{len(state.adapters)}"
        if name in state.adapters:
            raise InputError(f"Adapter name {name} already in use - please select a new adapter name.")
        lora = read_lora(pretrained_model_name_or_path_or_dict, weight_name)
        placed = resolve(lora, self._weight_maps())
        adapters = {**state.adapters, name: placed}
        self._apply_lora(replace(state, adapters=adapters, active=(name,), weights=(1.0,)))
        logger.info("LoRA %s loaded as %r (%d layers)", lora.source, name, len(lora))

    @_one_change
    def set_adapters(
        self, adapter_names: str | list[str], adapter_weights: float | list[float | None] | None = None
    ) -> None:
        """Make ``adapter_names`` the active adapters, at ``adapter_weights`` (one for all, or one each)."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        weights = adapter_weights if isinstance(adapter_weights, list) else [adapter_weights] * len(names)
        if len(weights) != len(names):
            raise InputError(
                f"Length of adapter names {len(names)} is not equal to the length of their weights {len(weights)}."
            )
        self._check_names(names)
        if self._lora.fused is not None:
            raise InputError("set_adapters: the LoRA is fused (fuse_lora); call unfuse_lora() first")
        chosen = tuple(1.0 if w is None else real("adapter_weights", w) for w in weights)
        self._apply_lora(replace(self._lora, active=tuple(names), weights=chosen, enabled=True))

    def get_active_adapters(self) -> list[str]:
        return list(self._lora.active) if self._lora.enabled else []

    def get_list_adapters(self) -> dict[str, list[str]]:
        """Each component and the adapters with layers on it."""
        listed: dict[str, list[str]] = {}
        for name, placed in self._lora.adapters.items():
            for component in placed:
                listed.setdefault(component, []).append(name)
        return listed

    @_one_change
    def delete_adapters(self, adapter_names: str | list[str]) -> None:
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        self._check_names(names)
        state = self._lora
        kept = [(n, w) for n, w in zip(state.active, state.weights) if n not in names]
        self._apply_lora(
            replace(
                state,
                adapters={k: v for k, v in state.adapters.items() if k not in names},
                active=tuple(n for n, _ in kept),
                weights=tuple(w for _, w in kept),
            )
        )

    @_one_change
    def disable_lora(self) -> None:
        self._apply_lora(replace(self._lora, enabled=False))

    @_one_change
    def enable_lora(self) -> None:
        self._apply_lora(replace(self._lora, enabled=True))

    @_one_change
    def unload_lora_weights(self) -> None:
        """Remove every adapter; the engines are the bundle's own again (weights fused by ``fuse_lora``
        stay until ``unfuse_lora``, as in diffusers)."""
        self._apply_lora(replace(self._lora, adapters={}, active=(), weights=()))

    @_one_change
    def fuse_lora(
        self,
        components: list[str] | None = None,
        lora_scale: float = 1.0,
        adapter_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Fix the active adapters (or ``adapter_names``) at ``lora_scale`` into the weights; they stay
        through ``unload_lora_weights`` until ``unfuse_lora``. (sdrt's engines always run merged weights:
        fusing changes what is kept, not the speed.)"""
        state = self._lora
        names = list(adapter_names) if adapter_names is not None else list(state.active)
        self._check_names(names)
        weights = dict(zip(state.active, state.weights))
        scale = real("lora_scale", lora_scale)
        done = {(n, c) for n, placed, _ in state.fused or () for c in placed}
        fused = []
        for n in names:  # what is fused stays as it is (PEFT's check_adapters_to_merge)
            placed = {
                c: v
                for c, v in state.adapters[n].items()
                if (components is None or c in components) and (n, c) not in done
            }
            if placed:
                fused.append((n, placed, weights.get(n, 1.0) * scale))
        if not fused:
            logger.warning("fuse_lora: all adapters are already fused, nothing to do")
            return
        self._apply_lora(replace(state, fused=(state.fused or ()) + tuple(fused)))

    @_one_change
    def unfuse_lora(self, components: list[str] | None = None, **kwargs: Any) -> None:
        self._apply_lora(replace(self._lora, fused=None))

    def lora_call_scale(self, scale: float) -> None:
        """A call's ``cross_attention_kwargs`` scale (1 when it gives none): other than 1, the call runs
        engines merged at ``scale`` from the adapters it started with (its own; shared with equal calls)."""
        call = self.pipe._state
        snapshot = call.lora if call is not None and call.lora is not None else self.snapshot()
        if scale == 1.0 or not snapshot.state.scales():
            return
        for name, engine in self._scales.engines(self, snapshot, scale).items():
            pin_engine(self.engines[name], engine)

    def snapshot(self) -> LoraSnapshot:
        """The state a call starting now runs (taken under ``ENGINE_SWAPS`` with the engines)."""
        with ENGINE_SWAPS:
            state = self._lora
            others = {}
            if state.scales():
                for name in LORA_COMPONENTS:
                    overrides = getattr(self.engines.get(name), "overrides", None)
                    if overrides is not None:
                        others[name] = {k: v for k, v in overrides.sources.items() if k != "lora"}
            return LoraSnapshot(state, others)

    # ---- applying -------------------------------------------------------------------------------
    def _check_names(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self._lora.adapters]
        if unknown:
            raise InputError(
                f"Adapter name(s) {unknown} not in the list of present adapters: {sorted(self._lora.adapters)}."
            )

    def _weight_maps(self) -> dict[str, WeightMap]:
        maps = {}
        for name in LORA_COMPONENTS:
            component = self.engines.get(name)
            if component is not None:
                overrides = _overrides(component)
                graph = os.path.relpath(overrides.path, component.bundle.path).replace(os.sep, "/")
                maps[name] = WeightMap.read(component.bundle.path, component.record, graph)
        return maps

    def _apply_lora(self, state: LoraState) -> None:
        """Open every engine ``state`` needs, then swap them all in at once (an error changes nothing; calls
        running keep the engines they started with)."""
        with ENGINE_CHANGES:
            contributions = state.contributions()
            swaps = []
            for name in LORA_COMPONENTS:
                component = self.engines.get(name)
                touched = [(placed[name], w) for placed, w in contributions if placed.get(name)]
                if component is None or (not touched and not _has_lora(component)):
                    continue
                overrides = _overrides(component)
                values = merged_values(touched, overrides.base_values) if touched else None
                swaps.append((component, overrides, *overrides.engine_with("lora", values)))
            with ENGINE_SWAPS:
                for component, overrides, engine, sources in swaps:
                    component.engine = engine
                    overrides.commit(engine, sources)
                self._lora = state
            self._scales.clear()


def _overrides(component: Any) -> Any:
    return component.initializer_overrides(
        "LoRA at run time", "build-engine --lora FILE[:SCALE] merges it at build"
    )


def _has_lora(component: Any) -> bool:
    overrides = getattr(component, "overrides", None)
    return overrides is not None and "lora" in overrides.sources
