"""AUTOMATIC1111's attention syntax: a prompt as (text, weight) fragments.

As ``modules/prompt_parser.parse_prompt_attention`` documents it: ``(text)`` multiplies the weight of
``text`` by 1.1, ``[text]`` divides it by 1.1, ``(text:1.5)`` multiplies it by 1.5; brackets nest and their
factors multiply. ``\\(``, ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are the literal characters. ``BREAK`` (a
word of its own, upper case) ends the current 75-token chunk; it comes back as ``("BREAK", -1.0)``.
Unbalanced brackets as A1111: a bracket left open applies its factor up to the end of the prompt, a
closing bracket with none open is ordinary text. Runs of equal weight are merged; an empty prompt gives
``[("", 1.0)]``.
"""

from __future__ import annotations

import re

ROUND = 1.1
SQUARE = 1 / 1.1
BREAK = "BREAK"

_TOKEN = re.compile(
    r"""
    \\[()\[\]\\]             # an escaped bracket or backslash
    | \\                     # a lone backslash
    | [(\[]                  # an opening bracket
    | :\s*([+-]?[.\d]+)\s*\) # an explicit weight closing a round bracket
    | [)\]]                  # a closing bracket
    | [^\\()\[\]:]+          # plain text
    | :                      # a colon that closes nothing
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """``text`` as (fragment, weight) pairs; see the module docstring."""
    fragments: list[list] = []  # [text, weight], weights multiplied in place as brackets close
    open_round: list[int] = []  # where each open bracket's fragments start
    open_square: list[int] = []

    def scale(start: int, factor: float) -> None:
        for fragment in fragments[start:]:
            fragment[1] *= factor

    for match in _TOKEN.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            fragments.append([piece[1:], 1.0])
        elif piece in ("(", "["):
            (open_round if piece == "(" else open_square).append(len(fragments))
        elif weight is not None and open_round:
            scale(open_round.pop(), float(weight))
        elif piece == ")" and open_round:
            scale(open_round.pop(), ROUND)
        elif piece == "]" and open_square:
            scale(open_square.pop(), SQUARE)
        else:
            fragments.extend(_text(piece))
    for starts, factor in ((open_round, ROUND), (open_square, SQUARE)):  # left open: up to the end
        for start in starts:
            scale(start, factor)
    return _merged(fragments) if fragments else [("", 1.0)]


def _text(piece: str) -> list[list]:
    """Plain text, split at ``BREAK``."""
    fragments: list[list] = []
    for i, part in enumerate(_BREAK.split(piece)):
        if i:
            fragments.append([BREAK, -1.0])
        fragments.append([part, 1.0])
    return fragments


def _merged(fragments: list[list]) -> list[tuple[str, float]]:
    merged: list[tuple[str, float]] = []
    for piece, weight in fragments:
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        else:
            merged.append((piece, weight))
    return merged
