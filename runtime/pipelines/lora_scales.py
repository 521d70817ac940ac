"""The engines of calls that give ``cross_attention_kwargs={"scale": s}``: the LoRA a call started with,
merged at ``s``, in sessions of that call's own (another thread's load or scale never reaches them).

Calls with the same adapters, weights, scale and other replaced values (textual inversion) share one set
of engines: the last ``SIZE`` sets are kept. Each holds a copy of the UNet's weights, and of the text
encoders' where the LoRA has layers there: measured +1.4 and +7.4 MiB of RSS for the first two sets of the
tiny test bundle (a 1 MiB UNet); SD1.5 would take about 3.4 GB (UNet) + 0.5 GB (text encoder) a set in fp32,
half in fp16, so ``SIZE`` stays small. A change of the loaded LoRA drops them all (calls running keep theirs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from sdrt.runtime.lora.weights import merged_values

if TYPE_CHECKING:
    from .lora import LoraLoader, LoraSnapshot

SIZE = 2  # engine sets kept (see the module docstring for what each costs)
LORA_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")


class CallScales:
    """A bounded cache (least recently used first out) of the engines merged at a call's scale."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while a set is made, so that equal calls at once share it
        self._kept: OrderedDict[tuple, tuple[Any, dict[str, Any]]] = OrderedDict()

    def engines(self, loader: LoraLoader, snapshot: LoraSnapshot, scale: float) -> dict[str, Any]:
        """The engines (by component) running ``snapshot``'s adapters at ``scale``."""
        contributions = snapshot.state.contributions(scale)
        # ids of the values themselves, which the kept entry holds, so no id is reused while it is kept
        key = (
            tuple((id(placed), weight) for placed, weight in contributions),
            tuple((c, s, id(v)) for c, others in snapshot.others.items() for s, v in others.items()),
        )
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept[1]
            engines = {}
            for name in LORA_COMPONENTS:
                component = loader.engines.get(name)
                touched = [(placed[name], w) for placed, w in contributions if placed.get(name)]
                if component is None or not touched:
                    continue
                overrides = component.overrides  # made when the adapters were loaded
                lora = merged_values(touched, overrides.base_values)
                engines[name] = overrides.engine_for({**snapshot.others.get(name, {}), "lora": lora})
            self._kept[key] = ((contributions, snapshot.others), engines)
            while len(self._kept) > SIZE:
                self._kept.popitem(last=False)
            return engines

    def clear(self) -> None:
        """Drop every set (the LoRA changed: no later call can ask for them; running calls hold theirs)."""
        with self._lock:
            self._kept.clear()
