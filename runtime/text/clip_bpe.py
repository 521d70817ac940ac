"""CLIP's byte-level BPE: text normalization, word splitting and merges, with the standard library only.

This reproduces, step for step, the `tokenizers` pipeline that transformers' ``CLIPTokenizer`` builds
(transformers >= 5, and the fast tokenizer of 4.x):

1. normalizer: NFC, every run of whitespace (``\\s+``) -> one space, lowercase (character by
   character, so a final capital sigma becomes ``σ``, not ``ς``);
2. pre-tokenizer: the words of ``<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|
   [^\\s\\p{L}\\p{N}]+``, each cut again by the GPT-2 regex of the ByteLevel step (which only
   splits the two special-token words), then the GPT-2 byte -> character table;
3. BPE with ``</w>`` as end-of-word suffix: the leftmost pair of lowest merge rank is merged first,
   unknown characters become the unknown token (not fused).

The letter/number classes come from :mod:`unicodedata`, so the ids match exactly for every
character assigned in the Unicode version of the running Python (14.0 for Python 3.11); characters
assigned later (for example scripts new in Unicode 15/16, which `tokenizers` 0.23 already knows)
can be classed differently.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# The characters the Oniguruma ``\s`` of `tokenizers` matches (str.isspace() also counts \x1c-\x1f).
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)
_SPECIAL_WORDS = ("<|startoftext|>", "<|endoftext|>")
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
_LETTER, _NUMBER, _SPACE, _OTHER = 0, 1, 2, 3


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible table from each byte to a printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


@lru_cache(maxsize=65536)
def _char_class(char: str) -> int:
    if char in WHITESPACE:
        return _SPACE
    category = unicodedata.category(char)[0]
    if category == "L":
        return _LETTER
    if category == "N":
        return _NUMBER
    return _OTHER


def normalize(text: str) -> str:
    """NFC, whitespace runs -> one space, per-character lowercase (CLIP's `tokenizers` normalizer)."""
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    in_space = False
    for char in text:
        if char in WHITESPACE:
            if not in_space:
                out.append(" ")
            in_space = True
        else:
            out.append(char)
            in_space = False
    joined = "".join(out)
    if joined.isascii():
        return joined.lower()
    return "".join([char.lower() for char in joined])


def split_words(text: str) -> list[str]:
    """The words of CLIP's pre-tokenizer regex, in order (whitespace is dropped)."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "<":
            special = next((w for w in _SPECIAL_WORDS if text.startswith(w, i)), None)
            if special is not None:  # the ByteLevel step's GPT-2 regex cuts it again: "<|", name, "|>"
                words.extend(("<|", special[2:-2], "|>"))
                i += len(special)
                continue
        if char == "'":
            contraction = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
            if contraction is not None:
                words.append(contraction)
                i += len(contraction)
                continue
        kind = _char_class(char)
        if kind == _SPACE:
            i += 1
        elif kind == _NUMBER:
            words.append(char)
            i += 1
        else:
            j = i + 1
            while j < n and _char_class(text[j]) == kind:
                j += 1
            words.append(text[i:j])
            i = j
    return words


class ByteLevelBPE:
    """CLIP's BPE model over a vocabulary (token -> id) and ranked merges."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], unk_token: str | None) -> None:
        self.vocab = vocab
        self.unk_id = vocab.get(unk_token) if unk_token is not None else None
        self.ranks: dict[tuple[str, str], int] = {}
        for rank, (a, b) in enumerate(merges):
            for token in (a, b, a + b):
                if token not in vocab:
                    raise ValueError(
                        f"merges.txt line {rank + 1}: {token!r} of merge '{a} {b}' is not in vocab.json"
                    )
            self.ranks[(a, b)] = rank
        self._byte_char = bytes_to_unicode()
        self._char_byte = {c: b for b, c in self._byte_char.items()}
        self._id_token = {i: t for t, i in vocab.items()}
        self._cache: dict[str, list[int]] = {}

    def word_ids(self, word: str) -> list[int]:
        """Ids of one pre-tokenized word."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = [self._byte_char[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        ranks = self.ranks
        while len(symbols) > 1:
            best_rank, best_i = None, -1
            for i in range(len(symbols) - 1):
                rank = ranks.get((symbols[i], symbols[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_i = rank, i
            if best_rank is None:
                break
            symbols[best_i : best_i + 2] = [symbols[best_i] + symbols[best_i + 1]]
        ids: list[int] = []
        for symbol in symbols:
            token_id = self.vocab.get(symbol, self.unk_id)
            if token_id is not None:
                ids.append(token_id)
        if len(self._cache) < 100_000:
            self._cache[word] = ids
        return ids

    def add_token(self, token: str, token_id: int) -> None:
        self._id_token[token_id] = token

    def remove_token(self, token_id: int) -> None:
        self._id_token.pop(token_id, None)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids, as transformers decodes CLIP tokens (byte-level, ``</w>`` -> space, stripped)."""
        text = "".join(self._id_token.get(int(i), "") for i in ids)
        data = bytearray()
        for char in text:
            byte = self._char_byte.get(char)
            if byte is None:
                data.extend(char.encode("utf-8"))
            else:
                data.append(byte)
        return data.decode("utf-8", errors="replace").replace("</w>", " ").strip()
