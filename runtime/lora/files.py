"""LoRA files read without torch, in the two layouts people have:

- diffusers / PEFT: ``unet.<module>.lora_A.weight`` and ``lora_B.weight`` (``text_encoder.``,
  ``text_encoder_2.``), the alpha in the header's ``lora_adapter_metadata`` (else alpha = rank);
- kohya / A1111: ``lora_unet_<module with _>.lora_down.weight``, ``.lora_up.weight``, ``.alpha``
  (``lora_te_`` / ``lora_te1_`` / ``lora_te2_`` for the text encoders).

A layer's change to its weight is ``up @ down * alpha / rank`` (PEFT's ``lora_alpha / r``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.tensor_files import read_safetensors_with_metadata

DEFAULT_FILE = "pytorch_lora_weights.safetensors"  # what diffusers' save_lora_weights writes
_DIFFUSERS = re.compile(
    r"^(unet|text_encoder|text_encoder_2)\.(.+?)\.(lora_A|lora_B|lora\.down|lora\.up|lora_linear_layer\.down"
    r"|lora_linear_layer\.up)\.weight$"
)
_DIFFUSERS_ALPHA = re.compile(r"^(unet|text_encoder|text_encoder_2)\.(.+)\.alpha$")
_KOHYA = re.compile(r"^lora_(unet|te|te1|te2)_(.+?)\.(lora_down\.weight|lora_up\.weight|alpha)$")
_KOHYA_PARTS = {"unet": "unet", "te": "text_encoder", "te1": "text_encoder", "te2": "text_encoder_2"}
_OTHER_KINDS = ("hada_", "lokr_", "dora_scale", "lora_magnitude_vector", ".diff", "lora_mid")


@dataclass(frozen=True)
class LoraLayer:
    """One LoRA layer: ``down`` [rank, in, (kh, kw)], ``up`` [out, rank, (1, 1)], its ``alpha``."""

    key: str  # as the file names it (for messages)
    down: np.ndarray
    up: np.ndarray
    alpha: float

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    def delta(self, shape: tuple[int, ...]) -> np.ndarray:
        """The change to a weight of ``shape`` (diffusers' layout: [out, in] or [out, in, kh, kw])."""
        up = self.up.reshape(self.up.shape[0], -1)
        down = self.down.reshape(self.rank, -1)
        if up.shape[1] != self.rank or up.shape[0] * down.shape[1] != int(np.prod(shape)):
            raise InputError(
                f"LoRA layer {self.key}: up {list(self.up.shape)} x down {list(self.down.shape)} does not make "
                f"a weight of {list(shape)}; the LoRA was made for another model"
            )
        return ((up @ down) * (self.alpha / self.rank)).reshape(shape)


@dataclass
class LoraFile:
    """A LoRA file's layers by component (``unet``, ``text_encoder``, ``text_encoder_2``) and module key:
    a dotted diffusers module name, or (``kohya``) one with ``_`` for ``.``."""

    source: str
    kohya: bool
    layers: dict[str, dict[str, LoraLayer]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(layers) for layers in self.layers.values())


def parse_lora_spec(spec: str, flag: str = "--lora") -> tuple[Path, float]:
    """``FILE`` or ``FILE:SCALE`` (a path that exists as given is a file, colons and all)."""
    path = Path(spec)
    if not path.exists() and ":" in spec:
        file, scale = spec.rsplit(":", 1)
        try:
            value = float(scale)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):  # NaN or Inf would make every image NaN, blamed on the model
            raise InputError(f"{flag} {spec}: the scale after ':' must be a number (finite, e.g. 0.8)")
        return Path(file), value
    return path, 1.0


def read_lora(source: str | os.PathLike[str] | dict[str, Any], weight_name: str | None = None) -> LoraFile:
    """A LoRA from a ``.safetensors`` file, a folder holding one (``weight_name``, else diffusers' default
    name), or a dict of arrays (a state dict already in memory)."""
    if isinstance(source, dict):
        tensors = {k: np.asarray(v, dtype=np.float32) for k, v in source.items()}
        return parse_lora(tensors, {}, "the state dict")
    path = Path(source)
    if path.is_dir():
        path = path / (weight_name or DEFAULT_FILE)
    if not path.is_file():
        raise InputError(
            f"LoRA {path}: no such file (a .safetensors file, or a folder holding {DEFAULT_FILE})"
        )
    if path.suffix.lower() != ".safetensors":
        raise InputError(
            f"LoRA {path}: sdrt's runtime reads .safetensors LoRA files (a {path.suffix} file is a pickle, which "
            "needs torch); convert it, or merge it at build with build-engine --lora"
        )
    tensors, metadata = read_safetensors_with_metadata(path)
    return parse_lora(tensors, metadata, str(path))


def parse_lora(tensors: dict[str, np.ndarray], metadata: dict[str, str], source: str) -> LoraFile:
    """Pair each layer's down and up weights; a key of another kind (LoHa, LoKr, DoRA...) is an error."""
    other = next((k for k in tensors if any(kind in k for kind in _OTHER_KINDS)), None)
    if other is not None:
        raise InputError(
            f"LoRA {source}: {other} belongs to a LoHa / LoKr / DoRA adapter, which sdrt's runtime does not "
            "apply (it applies plain LoRA: down and up weights); merge it at build with build-engine --lora"
        )
    kohya = any(_KOHYA.match(k) for k in tensors)
    parts: dict[tuple[str, str], dict[str, Any]] = {}
    for key, value in tensors.items():
        found = _kohya_key(key) if kohya else _diffusers_key(key)
        if found is None:
            raise InputError(
                f"LoRA {source}: {key} is not a LoRA weight sdrt knows ({'kohya' if kohya else 'diffusers'} "
                "layout expected: lora_unet_<module>.lora_down.weight or unet.<module>.lora_A.weight)"
            )
        part, module, role = found
        parts.setdefault((part, module), {"key": key})[role] = value
    file = LoraFile(source, kohya)
    alphas = _metadata_alphas(metadata, source)
    for (part, module), pair in parts.items():
        if "down" not in pair or "up" not in pair:
            raise InputError(
                f"LoRA {source}: {pair['key']} has no matching {'up' if 'down' in pair else 'down'}"
            )
        file.layers.setdefault(part, {})[module] = _layer(source, part, module, pair, alphas)
    if not len(file):
        raise InputError(f"LoRA {source}: holds no LoRA weights")
    return file


def _layer(source: str, part: str, module: str, pair: dict[str, Any], alphas: Any) -> LoraLayer:
    """One layer's down, up and alpha, checked: matrices (or conv kernels) of finite numbers, a finite alpha;
    NaN or Inf there would turn every image drawn with the LoRA into NaN, blamed on the engines."""
    down, up = np.asarray(pair["down"]), np.asarray(pair["up"])
    for role, value in (("down", down), ("up", up)):
        if value.ndim < 2 or 0 in value.shape:
            raise InputError(
                f"LoRA {source}: the {role} weight of {pair['key']} has shape {list(value.shape)}, not a matrix; "
                "the file is damaged or not a LoRA"
            )
    rank = int(down.shape[0])
    given = pair.get("alpha")
    alpha = float(np.asarray(given).reshape(-1)[0]) if given is not None else alphas(part, module, rank)
    if not (np.isfinite(alpha) and np.isfinite(down).all() and np.isfinite(up).all()):
        raise InputError(
            f"LoRA {source}: {pair['key']} (its down, up or alpha) holds NaN or Inf values, which would make "
            "every image NaN; the file is damaged or its training diverged, use another"
        )
    return LoraLayer(pair["key"], down, up, alpha)


def _kohya_key(key: str) -> tuple[str, str, str] | None:
    match = _KOHYA.match(key)
    if match is None:
        return None
    part, module, kind = match.groups()
    return _KOHYA_PARTS[part], module, {"lora_down.weight": "down", "lora_up.weight": "up"}.get(kind, "alpha")


def _diffusers_key(key: str) -> tuple[str, str, str] | None:
    match = _DIFFUSERS.match(key)
    if match is not None:
        part, module, kind = match.groups()
        return part, module, "down" if kind.endswith(("lora_A", "down")) else "up"
    match = _DIFFUSERS_ALPHA.match(key)
    return (match.group(1), match.group(2), "alpha") if match else None


def _metadata_alphas(metadata: dict[str, str], source: str) -> Any:
    """``(part, module, rank) -> alpha`` from diffusers' ``lora_adapter_metadata`` (PEFT's ``lora_alpha``
    and ``alpha_pattern`` per component); alpha = rank where it says nothing, as diffusers then does."""
    try:
        config = json.loads(metadata.get("lora_adapter_metadata") or "{}")
    except ValueError as error:
        raise InputError(f"LoRA {source}: its lora_adapter_metadata is not JSON ({error})") from error

    def alpha(part: str, module: str, rank: int) -> float:
        for pattern, value in (config.get(f"{part}.alpha_pattern") or {}).items():
            if re.match(rf"(.*\.)?({pattern})$", module):
                return float(value)
        return float(config.get(f"{part}.lora_alpha") or rank)

    return alpha
