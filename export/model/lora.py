"""``build-engine --lora FILE[:SCALE]``: LoRA weights merged into the UNet and text encoder(s) before export,
by diffusers' own loader (``load_lora_weights``: diffusers/PEFT and A1111/kohya formats), as
``set_adapters(..., adapter_weights=scales)`` then ``fuse_lora()`` would give them."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdrt.export.errors import ModelFolderError
from sdrt.runtime.families import LORA, families_with

from .folder import ModelFolder, load_part, with_parts_saved


@dataclasses.dataclass(frozen=True)
class Lora:
    file: Path
    scale: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> Lora:
        """``FILE`` or ``FILE:SCALE`` (a path that exists as given is a file, colons and all)."""
        from sdrt.runtime.errors import InputError
        from sdrt.runtime.lora.files import parse_lora_spec

        try:
            return cls(*parse_lora_spec(spec))
        except InputError as error:
            raise ModelFolderError(str(error)) from error

    def __str__(self) -> str:
        return f"{self.file}:{self.scale:g}" if self.scale != 1.0 else str(self.file)


def check_loras(folder: ModelFolder, specs: list[str]) -> None:
    """What can be checked before any work: the model takes LoRA, the files are there, peft is installed."""
    if not folder.family.takes(LORA):
        takers = ", ".join(f.title for f in families_with(LORA))
        raise ModelFolderError(f"--lora: sdrt merges LoRA into {takers} models, not {folder.model_type}")
    for lora in map(Lora.parse, specs):
        if not lora.file.exists():
            raise ModelFolderError(f"--lora {lora}: no such file {lora.file}")
        check_lora_shapes(lora)
    try:
        import peft  # noqa: F401 - diffusers' LoRA loading needs it
    except ImportError as error:
        raise ModelFolderError(
            "--lora needs PEFT, which diffusers loads LoRA with: pip install peft"
        ) from error


@contextlib.contextmanager
def loras_merged(folder: ModelFolder, specs: list[str] | None) -> Iterator[ModelFolder]:
    """``folder`` reading its UNet and text encoders from a scratch folder where they are saved with the LoRAs
    of ``specs`` fused in; ``folder`` itself when there are none."""
    if not specs:
        yield folder
        return
    loras = [Lora.parse(spec) for spec in specs]
    dual = folder.family.dual_text_encoders
    names = ["unet", "text_encoder"] + (["text_encoder_2"] if dual else [])
    parts = {name: load_part(folder, name) for name in names if name in folder.classes}
    loader = _loader(dual, parts)
    adapters = [f"sdrt_lora_{i}" for i in range(len(loras))]
    for lora, adapter in zip(loras, adapters):
        _load(loader, lora, adapter, parts)
    loader.set_adapters(adapters, adapter_weights=[lora.scale for lora in loras])
    loader.fuse_lora(components=list(parts), lora_scale=1.0, adapter_names=adapters)
    loader.unload_lora_weights()
    with with_parts_saved(folder, parts, "sdrt-lora-", loras=tuple(map(str, loras))) as changed:
        yield changed


def _lora_layers(parts: dict[str, Any], adapter: str) -> int:
    return sum(
        1
        for part in parts.values()
        for module in part.modules()
        if adapter in getattr(getattr(module, "lora_A", None), "keys", lambda: ())()
    )


def _load(loader: Any, lora: Lora, adapter: str, parts: dict[str, Any]) -> None:
    """One LoRA as an adapter; a file none of whose keys fit the model is an error naming a key."""
    try:
        loader.load_lora_weights(str(lora.file), adapter_name=adapter)
    except (ValueError, KeyError, RuntimeError, OSError) as error:  # diffusers' and PEFT's own checks
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFolderError(f"--lora {lora}: diffusers cannot load it: {reason}") from error
    if _lora_layers(parts, adapter) == 0:
        keys = _file_keys(lora.file)
        raise ModelFolderError(
            f"--lora {lora}: 0 of its {len(keys)} weights fit this {type(parts['unet']).__name__} or its text "
            f"encoders (e.g. {keys[0] if keys else 'none'}); it was made for another model"
        )


_PAIRS = (
    ("lora_down.weight", "lora_up.weight"),
    ("lora_A.weight", "lora_B.weight"),
    ("lora.down.weight", "lora.up.weight"),
)


def check_lora_shapes(lora: Lora) -> None:
    """Each layer's down weight is [rank, in, ...] and its up weight [out, rank, ...] with the rank at most
    the layer's widths: diffusers meets a 0-d or transposed pair with a traceback or a page of size
    mismatches. Only .safetensors files are read here (their shapes, not their values)."""
    from safetensors import safe_open

    path = lora.file if lora.file.is_file() else next(lora.file.glob("*.safetensors"), None)
    if path is None or path.suffix != ".safetensors":
        return
    try:
        with safe_open(str(path), "np") as file:
            shapes = {key: list(file.get_slice(key).get_shape()) for key in file.keys()}
    except Exception as error:  # noqa: BLE001 - safetensors' own kinds; diffusers reports a damaged file
        raise ModelFolderError(f"--lora {lora}: not a readable .safetensors file ({error})") from error
    for key, down in shapes.items():
        for down_name, up_name in _PAIRS:
            up = shapes.get(key[: -len(down_name)] + up_name) if key.endswith(down_name) else None
            problem = _shape_problem(down, up) if up is not None else None
            if problem:
                raise ModelFolderError(
                    f"--lora {lora}: {key} {down} with its up weight {up}: {problem} (a LoRA layer's down weight "
                    "is [rank, in], its up weight [out, rank]); the file is damaged or not a LoRA"
                )


def _shape_problem(down: list[int], up: list[int]) -> str | None:
    if len(down) < 2 or len(up) < 2:
        return "not matrices"
    rank, width_in = down[0], math.prod(down[1:])
    if up[1] != rank:
        return "their ranks differ (transposed?)"
    if rank > width_in:  # a square layer's transposed pair: [in, rank] read as rank `in` of width `rank`
        return f"a rank of {rank} above the layer's input width {width_in} (transposed?)"
    return None


def _file_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    try:
        if path.is_dir():
            path = next(path.glob("*.safetensors"))
        with safe_open(str(path), "np") as file:
            return sorted(file.keys())
    except (OSError, StopIteration, Exception):  # noqa: BLE001 - only for the message
        return []


def _loader(dual_text_encoders: bool, parts: dict[str, Any]) -> Any:
    """diffusers' LoRA loader mixin on a pipeline of only the UNet and text encoder(s) (diffusers reads the
    modules a pipeline holds from its constructor's parameters, so each kind has its own)."""
    import diffusers
    from diffusers.loaders import StableDiffusionLoraLoaderMixin, StableDiffusionXLLoraLoaderMixin

    class _Loras(diffusers.DiffusionPipeline, StableDiffusionLoraLoaderMixin):
        def __init__(self, unet: Any, text_encoder: Any) -> None:
            super().__init__()
            self.register_modules(unet=unet, text_encoder=text_encoder)

    class _XLLoras(diffusers.DiffusionPipeline, StableDiffusionXLLoraLoaderMixin):
        def __init__(self, unet: Any, text_encoder: Any, text_encoder_2: Any) -> None:
            super().__init__()
            self.register_modules(unet=unet, text_encoder=text_encoder, text_encoder_2=text_encoder_2)

    return (_XLLoras if dual_text_encoders else _Loras)(**parts)
