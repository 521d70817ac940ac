"""A JSON body's fields, read one by one: each bad value is a ``RequestError`` naming the field."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

from sdrt.runtime.errors import InputError


class RequestError(InputError):
    """A request the server refuses: HTTP ``status``, the ``field`` at fault (or None) and why."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def integer(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise RequestError(f"{name} must be a whole number, got {value!r}", field=name)
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}, got {int(value)}", field=name)
    return int(value)


def number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"{name} must be a finite number, got {value!r}", field=name)
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}, got {value}", field=name)
    return float(value)


def text(body: dict[str, Any], name: str, default: str, max_chars: int) -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string, got {type(value).__name__}", field=name)
    if len(value) > max_chars:
        raise RequestError(
            f"{name} is {len(value)} characters long; this server takes at most {max_chars} "
            "(the text encoder reads 77 tokens, a few hundred characters)",
            field=name,
        )
    return value


def choice(body: dict[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if value not in allowed:
        raise RequestError(
            f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}", field=name
        )
    return value


@dataclass(frozen=True)
class Limits:
    """Per-request caps (sizes are capped by each bundle's profile instead)."""

    max_prompt_chars: int = 4000
    max_images: int = 16
    max_steps: int = 150
    max_body_bytes: int = 32 * 1024 * 1024
    timeout_s: float = 600.0


def seeds(seed: int, count: int) -> list[int]:
    """A1111's seeds for ``count`` images from one request seed: seed, seed+1, ...; -1 draws one."""
    if seed == -1:
        seed = secrets.randbelow(2**32 - count)
    return [seed + i for i in range(count)]
