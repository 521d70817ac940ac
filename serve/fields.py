"""What the pydantic models (``schemas.py``) cannot know: this server's limits, and extra fields.

Types, finiteness and static ranges are the models' job; here the per-server caps (``Limits``), each a
``RequestError`` naming its field, and the check that fields sdrt does not read are plain finite JSON
(they are echoed back in A1111's ``parameters``).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

from sdrt.runtime.errors import InputError

MAX_NESTING = 32


class RequestError(InputError):
    """A request the server refuses: HTTP ``status``, the ``field`` at fault (or None) and why."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Per-request caps (sizes are capped by each bundle's profile instead); checked when made."""

    max_prompt_chars: int = 4000
    max_images: int = 16
    max_steps: int = 150
    max_body_bytes: int = 32 * 1024 * 1024
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("max_prompt_chars", "max_images", "max_steps", "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"limit {name} must be a whole number of at least 1, got {value!r}")
        timeout = self.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
            raise InputError(f"limit timeout_s must be a finite number of seconds above 0, got {timeout!r}")


def at_most(name: str, value: int, high: int) -> int:
    if value > high:
        raise RequestError(f"{name} must be at most {high} on this server, got {value}", field=name)
    return value


def text(name: str, value: str | None, max_chars: int) -> str:
    if value is None:
        return ""
    if len(value) > max_chars:
        raise RequestError(
            f"{name} is {len(value)} characters long; this server takes at most {max_chars} "
            "(the text encoder reads 77 tokens, a few hundred characters)",
            field=name,
        )
    return value


def check_plain(extras: dict[str, Any] | None) -> None:
    """Fields sdrt does not read: finite numbers and at most MAX_NESTING levels deep, else a 400."""
    for name, value in (extras or {}).items():
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > MAX_NESTING:
                raise RequestError(f"{name} is nested over {MAX_NESTING} levels deep", field=name)
            if isinstance(item, float) and not math.isfinite(item):
                raise RequestError(f"{name} holds {item}, not a finite number", field=name)
            if isinstance(item, dict):
                stack.extend((v, depth + 1) for v in item.values())
            elif isinstance(item, list):
                stack.extend((v, depth + 1) for v in item)


def seeds(seed: int, count: int) -> list[int]:
    """A1111's seeds for ``count`` images from one request seed: seed, seed+1, ...; -1 draws one."""
    if seed == -1:
        seed = secrets.randbelow(2**32 - count)
    return [seed + i for i in range(count)]
