"""Where engines cache what they compile for this machine: ``$SDRT_CACHE_DIR``, else
``$XDG_CACHE_HOME/sdrt`` or ``~/.cache/sdrt``; ``SDRT_CACHE_DIR=`` (empty) turns the caches off."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path | None:
    value = os.environ.get("SDRT_CACHE_DIR")
    if value is not None:
        return Path(value) if value else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sdrt"


def cache_dir(kind: str) -> Path | None:
    """``<root>/<kind>`` (e.g. ``openvino``, ``ort``), or None when caching is off."""
    root = cache_root()
    return None if root is None else root / kind
