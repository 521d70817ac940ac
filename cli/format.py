"""Text the commands print: byte counts and ranges."""

from __future__ import annotations

from collections.abc import Sequence


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def range_text(value: Sequence[int]) -> str:
    """``(32, 96)`` -> ``32..96``; ``(64, 64)`` -> ``64``."""
    return str(value[0]) if value[0] == value[1] else f"{value[0]}..{value[1]}"
