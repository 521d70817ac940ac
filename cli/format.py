"""Text the commands print: byte counts and ranges, the safety checker's flags."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


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


def report_flagged(flags: list[bool] | None, paths: list[Path]) -> None:
    """Say which images the bundle's safety checker flagged (diffusers' ``nsfw_content_detected``: black)."""
    for flagged, path in zip(flags or [], paths):
        if flagged:
            print(
                f"{path}: flagged by the safety checker (nsfw_content_detected), so it is black; try another "
                "prompt or seed",
                file=sys.stderr,
            )
