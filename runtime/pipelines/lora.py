"""LoRA at run time, torch-free, with diffusers' names: ``load_lora_weights``, ``set_adapters``,
``unload_lora_weights``, ``fuse_lora`` / ``unfuse_lora``, ``cross_attention_kwargs={"scale": s}``.

The UNet's and text encoders' weights are initializers of their ONNX graphs; build-engine records which
initializer holds each weight (``lora.weights``). Applying LoRA is: the merged weights
``W + sum(weight_i * scale * up_i @ down_i * alpha_i / rank_i)`` computed with NumPy from the weights as
built (read once per touched layer, kept once whatever the number of adapters), handed to a new ONNX
Runtime session over the same graph (the engine's ``initializer_overrides``). Every change starts from the base
weights, so switching A -> B leaves nothing of A, and unloading gives back the very engine loaded at
first. TensorRT plans and OpenVINO IR hold their weights fixed: there, ``build-engine --lora`` merges.

A per-call ``cross_attention_kwargs={"scale": s}`` merges again when ``s`` differs from the last call's
(a new session: calls in other threads at that moment run with the new weights).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.lora.files import read_lora
from sdrt.runtime.lora.weights import WeightMap, merged_values, resolve

from .checks import real

logger = logging.getLogger(__name__)

LORA_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
Placed = dict[str, list]  # component -> [(Target, LoraLayer)]


@dataclass(frozen=True)
class LoraState:
    """What is loaded and what the engines hold now (replaced whole on every change)."""

    adapters: dict[str, Placed] = field(default_factory=dict)
    active: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    enabled: bool = True
    fused: tuple[tuple[Placed, float], ...] | None = None  # fuse_lora's contributions, until unfuse_lora
    scale: float = 1.0  # the last call's cross_attention_kwargs scale

    def contributions(self) -> list[tuple[Placed, float]]:
        if self.fused is not None:
            return list(self.fused)
        if not self.enabled:
            return []
        return [(self.adapters[name], weight * self.scale) for name, weight in zip(self.active, self.weights)]


class LoraLoader:
    """diffusers' LoRA loader methods for an sdrt pipeline whose UNet and text encoders run on ONNX Runtime;
    the pipeline holds one (``pipe.lora_loader``) and its methods of these names delegate to it."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self._lora = LoraState()

    @property
    def engines(self) -> dict[str, Any]:
        """The pipeline's engines (its UNet and text encoders are the ones LoRA changes)."""
        return dict(self.pipe.engines)

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
        weights = [1.0 if w is None else real("adapter_weights", w) for w in weights]
        self._apply_lora(replace(self._lora, active=tuple(names), weights=tuple(weights), enabled=True))

    def get_active_adapters(self) -> list[str]:
        return list(self._lora.active) if self._lora.enabled else []

    def get_list_adapters(self) -> dict[str, list[str]]:
        """Each component and the adapters with layers on it."""
        listed: dict[str, list[str]] = {}
        for name, placed in self._lora.adapters.items():
            for component in placed:
                listed.setdefault(component, []).append(name)
        return listed

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

    def disable_lora(self) -> None:
        self._apply_lora(replace(self._lora, enabled=False))

    def enable_lora(self) -> None:
        self._apply_lora(replace(self._lora, enabled=True))

    def unload_lora_weights(self) -> None:
        """Remove every adapter; the engines are the bundle's own again (weights fused by ``fuse_lora``
        stay until ``unfuse_lora``, as in diffusers)."""
        self._apply_lora(replace(self._lora, adapters={}, active=(), weights=()))

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
        fused = tuple(
            (
                {c: v for c, v in state.adapters[n].items() if components is None or c in components},
                weights.get(n, 1.0) * scale,
            )
            for n in names
        )
        self._apply_lora(replace(state, fused=(state.fused or ()) + fused, scale=1.0))

    def unfuse_lora(self, components: list[str] | None = None, **kwargs: Any) -> None:
        self._apply_lora(replace(self._lora, fused=None))

    def lora_call_scale(self, scale: float) -> None:
        """A call's ``cross_attention_kwargs`` scale (1 when it gives none): merge again if it changed."""
        state = self._lora
        if state.active and state.fused is None and state.enabled and scale != state.scale:
            self._apply_lora(replace(state, scale=scale))

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
        """Open every engine ``state`` needs, then swap them all in (an error changes nothing)."""
        with _lock(self):
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
            for component, overrides, engine, sources in swaps:
                component.engine = engine
                overrides.commit(engine, sources)
            self._lora = state


def _overrides(component: Any) -> Any:
    return component.initializer_overrides(
        "LoRA at run time", "build-engine --lora FILE[:SCALE] merges it at build"
    )


def _has_lora(component: Any) -> bool:
    overrides = getattr(component, "overrides", None)
    return overrides is not None and "lora" in overrides.sources


_LOCKS_GUARD = threading.Lock()


def _lock(pipe: Any) -> threading.RLock:
    with _LOCKS_GUARD:
        if "_lora_lock" not in pipe.__dict__:
            pipe._lora_lock = threading.RLock()
        return pipe._lora_lock
