"""A weighted prompt as AUTOMATIC1111 tokenizes it: chunks of 75 tokens, each with its own BOS and EOS and
padded to 77, and a weight per token (``modules/sd_hijack_clip``'s ``tokenize_line``).

``BREAK`` closes the current chunk early. When a chunk fills up and a comma came in its last
``COMMA_BACKTRACK`` tokens, the tokens after that comma move to the next chunk (A1111's
``comma_padding_backtrack`` default), so phrases are not cut in two. Textual-inversion tokens are expanded
first (the tokenizer's ``expand_multi_vector_tokens``); A1111's own embedding lookup is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .attention import BREAK, parse_prompt_attention

CHUNK = 75  # tokens per chunk, between BOS and EOS
COMMA_BACKTRACK = 20


@dataclass
class Chunk:
    """77 token ids (BOS, up to 75 tokens, EOS, padding) and their weights (1.0 for BOS, EOS, padding)."""

    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


class _Chunker:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.comma = tokenizer.vocab.get(",</w>")
        self.chunks: list[Chunk] = []
        self.ids: list[int] = []
        self.weights: list[float] = []
        self.last_comma = -1

    def close(self) -> None:
        t = self.tokenizer
        pad = CHUNK - len(self.ids)
        ids = [t.bos_token_id, *self.ids, t.eos_token_id] + [t.pad_token_id] * pad
        self.chunks.append(Chunk(ids, [1.0, *self.weights, 1.0] + [1.0] * pad))
        self.ids, self.weights, self.last_comma = [], [], -1

    def add(self, token: int, weight: float) -> None:
        if token == self.comma:
            self.last_comma = len(self.ids)
        elif len(self.ids) == CHUNK and self.last_comma != -1 and CHUNK - self.last_comma <= COMMA_BACKTRACK:
            cut = self.last_comma + 1
            moved = self.ids[cut:], self.weights[cut:]
            self.ids, self.weights = self.ids[:cut], self.weights[:cut]
            self.close()
            self.ids, self.weights = list(moved[0]), list(moved[1])
        if len(self.ids) == CHUNK:
            self.close()
        self.ids.append(token)
        self.weights.append(weight)


def prompt_chunks(tokenizer: Any, text: str) -> list[Chunk]:
    """``text`` in A1111's attention syntax as chunks of 77 ids and weights (at least one chunk)."""
    expand = getattr(tokenizer, "expand_multi_vector_tokens", None)
    chunker = _Chunker(tokenizer)
    for piece, weight in parse_prompt_attention(text):
        if piece == BREAK and weight == -1.0:
            chunker.close()
            continue
        for token in tokenizer.encode(expand(piece) if expand else piece):
            chunker.add(token, weight)
    if chunker.ids or not chunker.chunks:
        chunker.close()
    return chunker.chunks
