"""LoRA by name, as A1111's prompts name them: ``<lora:NAME:WEIGHT>`` (``<lora:NAME>``: weight 1).

``sdrt serve --lora-dir DIR`` makes every ``.safetensors`` file under DIR a LoRA named by its file's stem
(A1111's rule); ``/sdapi/v1/loras`` lists them, ``/sdapi/v1/refresh-loras`` scans DIR again. A prompt's
tags are taken out of its text and resolved here, in the ingress: the replica gets the files' paths from
this scan, never a path a request wrote. The replica applies the set per pipeline call (run-time LoRA on
ONNX Runtime bundles); requests with equal sets share batches (``Settings.loras``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fields import RequestError

log = logging.getLogger("ray.serve")

LORA_TAG = re.compile(r"<lora:([^>]*)>", re.IGNORECASE)
SUFFIXES = (".safetensors",)


@dataclass(frozen=True)
class LoraUse:
    """One LoRA a call applies: its name, its file (from the server's scan) and its weight."""

    name: str
    path: str
    weight: float


class LoraLibrary:
    """The LoRA files under ``--lora-dir`` by name (the first in path order where two share a stem)."""

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        self.files: dict[str, Path] = {}
        self.refresh()

    def refresh(self) -> None:
        files: dict[str, Path] = {}
        if self.folder:
            found = sorted(p for p in Path(self.folder).rglob("*") if p.suffix.lower() in SUFFIXES)
            for path in found:
                if path.is_file():
                    files.setdefault(path.stem, path)
        self.files = files

    def listed(self) -> list[dict[str, Any]]:
        """A1111's ``/sdapi/v1/loras``: name, alias, path and the file's safetensors metadata."""
        out = []
        for name, path in self.files.items():
            metadata = _metadata(path)
            alias = metadata.get("ss_output_name") or name
            out.append({"name": name, "alias": alias, "path": str(path), "metadata": metadata})
        return out

    def take(self, prompt: str) -> tuple[str, tuple[LoraUse, ...]]:
        """The prompt without its ``<lora:...>`` tags, and the LoRA they name (sorted by name; a name given
        twice adds its weights, as two A1111 tags would)."""
        weights: dict[str, float] = {}
        for tag in LORA_TAG.findall(prompt):
            name, weight = self._parse(tag)
            weights[name] = weights.get(name, 0.0) + weight
        uses = tuple(LoraUse(n, str(self.files[n]), w) for n, w in sorted(weights.items()))
        return LORA_TAG.sub("", prompt), uses

    def _parse(self, tag: str) -> tuple[str, float]:
        parts = tag.split(":")
        name = parts[0].strip()
        if len(parts) > 2:
            raise RequestError(
                f"<lora:{tag}>: sdrt takes <lora:NAME> or <lora:NAME:WEIGHT> (one weight for the UNet and text "
                "encoder)",
                field="prompt",
            )
        if name not in self.files:
            where = (
                "no --lora-dir was given to sdrt serve"
                if not self.folder
                else "GET /sdapi/v1/loras lists them"
            )
            raise RequestError(f"<lora:{tag}>: no LoRA named {name!r} here ({where})", field="prompt")
        if len(parts) == 1:
            return name, 1.0
        try:
            weight = float(parts[1])
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight):
            raise RequestError(
                f"<lora:{tag}>: the weight {parts[1].strip()!r} is not a finite number (write <lora:{name}:0.8>)",
                field="prompt",
            )
        return name, weight


def _metadata(path: Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors header (read without loading the tensors); {} if unreadable."""
    try:
        with open(path, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if size > 100_000_000:
                return {}
            header = json.loads(handle.read(size))
        metadata = header.get("__metadata__") or {}
        return {str(k): v for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    except (OSError, ValueError, struct.error) as error:
        log.warning("LoRA %s: unreadable safetensors header (%s)", path, error)
        return {}
