"""Where a LoRA layer lands in a bundle: the map build-engine records from each Linear / Conv weight of the
UNet and text encoders to the ONNX initializer holding it (``onnx/<name>.weights.json``, per graph file),
and the merged values of those initializers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.errors import BundleError, InputError

from .files import LoraFile, LoraLayer
from .sgm_names import SgmNames

MAP_FORMAT = 1


@dataclass(frozen=True)
class Target:
    """A model weight in one graph: its initializer and layout (``"="`` as diffusers stores it, ``"T"``
    transposed)."""

    parameter: str
    initializer: str
    layout: str


class WeightMap:
    """One component's weights in the graph file its engine runs, looked up by a LoRA's module keys."""

    def __init__(
        self, component: str, graph: str, located: dict[str, list[str]], parameters: list[str]
    ) -> None:
        self.component, self.graph = component, graph
        self.targets = {p: Target(p, init, layout) for p, (init, layout) in located.items()}
        self.parameters = set(parameters)
        self._modules: dict[str, str] = {}
        self._sgm: SgmNames | None = None
        for parameter in parameters:
            module = parameter.removesuffix(".weight")
            for name in {module, module.removeprefix("text_model."), f"text_model.{module}"}:
                self._modules.setdefault(name, parameter)
                self._modules.setdefault(name.replace(".", "_"), parameter)

    @classmethod
    def read(cls, bundle_dir: Path, record: Any, graph: str) -> WeightMap:
        """The map of ``record``'s component in ``graph`` (bundle-relative)."""
        if not record.weights:
            raise BundleError(
                f"{record.name}: this bundle records no weight map (built by an older sdrt), which run-time LoRA "
                f"needs; rebuild it: build-engine MODEL_DIR -o {bundle_dir} --force"
            )
        try:
            data = json.loads((bundle_dir / record.weights).read_text())
            located = data["graphs"][graph]
            parameters = list(data["parameters"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BundleError(
                f"{record.name}: {record.weights} is missing or damaged, or maps no {graph} ({error}); rebuild "
                f"the bundle: build-engine MODEL_DIR -o {bundle_dir} --force"
            ) from error
        if data.get("format") != MAP_FORMAT:
            raise BundleError(
                f"{record.weights}: map format {data.get('format')}, this sdrt reads {MAP_FORMAT}"
            )
        return cls(record.name, graph, located, parameters)

    def parameter(self, module: str) -> str | None:
        """The parameter a LoRA's module key (dotted, or kohya's ``_`` form; a UNet's also in the original
        layout's block names, as kohya's SDXL files have them) names, if the model has it."""
        found = self._modules.get(module)
        if found is None and self.component == "unet":
            if self._sgm is None:
                self._sgm = SgmNames(sorted(self.parameters))
            translated = self._sgm.to_diffusers(module.replace(".", "_"))
            found = self._modules.get(translated) if translated else None
        return found


def resolve(lora: LoraFile, maps: dict[str, WeightMap]) -> dict[str, list[tuple[Target, LoraLayer]]]:
    """Each layer of ``lora`` on its target, per component; any layer that fits nothing is an error naming
    how many fit and a key that does not (a LoRA for another model, or for a component the bundle lacks)."""
    placed: dict[str, list[tuple[Target, LoraLayer]]] = {}
    misses, fused = [], []
    for component, layers in lora.layers.items():
        weight_map = maps.get(component)
        for module, layer in layers.items():
            parameter = weight_map.parameter(module) if weight_map else None
            if weight_map is None or parameter is None:
                misses.append(layer.key)
            elif parameter not in weight_map.targets:
                fused.append(f"{parameter} in {weight_map.graph}")
            else:
                placed.setdefault(component, []).append((weight_map.targets[parameter], layer))
    if misses:
        fits = len(lora) - len(misses)
        raise InputError(
            f"LoRA {lora.source}: {fits} of its {len(lora)} layers fit this bundle's "
            f"{' / '.join(sorted(maps)) or 'components'} (e.g. {misses[0]} does not); it was made for another "
            "model (an SDXL LoRA on SD 1.5, or the reverse), or for a component the bundle was built without"
        )
    if fused:
        raise InputError(
            f"LoRA {lora.source}: {fused[0]} (and {len(fused) - 1} more) is packed with other weights or reordered "
            "by the graph's optimizations (fused attention, NHWC convolutions: the CUDA graphs), so it cannot be "
            "replaced at run time; merge the LoRA at build: build-engine --lora FILE"
        )
    return placed


def merged_values(
    contributions: list[tuple[list[tuple[Target, LoraLayer]], float]], base_values: Any
) -> dict[str, np.ndarray]:
    """``initializer -> base + sum(weight * delta)`` for every initializer the ``(layers, weight)`` touch;
    ``base_values(names)`` gives initializers' values as built (their dtype is kept)."""
    names = sorted({target.initializer for layers, _ in contributions for target, _ in layers})
    base = base_values(names)
    deltas: dict[str, np.ndarray] = {}
    for layers, weight in contributions:
        for target, layer in layers:
            value = base[target.initializer]
            shape = value.shape[::-1] if target.layout == "T" else value.shape
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
                delta = layer.delta(tuple(shape)) * np.float32(weight)
            delta = delta.T if target.layout == "T" else delta
            deltas[target.initializer] = (
                deltas[target.initializer] + delta if target.initializer in deltas else delta
            )
    with np.errstate(over="ignore", invalid="ignore"):
        merged = {
            name: np.ascontiguousarray((base[name].astype(np.float32) + delta).astype(base[name].dtype))
            for name, delta in deltas.items()
        }
    for name, value in merged.items():
        if not np.isfinite(value).all():  # finite factors whose product overflows: a huge alpha or scale
            layer, weight = next((la, w) for ls, w in contributions for t, la in ls if t.initializer == name)
            raise InputError(
                f"LoRA layer {layer.key} (alpha {layer.alpha:g}, rank {layer.rank}) at weight {weight:g} makes "
                f"{name} overflow to Inf/NaN; lower the adapter weight or the call's scale (set_adapters, "
                "cross_attention_kwargs) or check the LoRA's alpha"
            )
    return merged
