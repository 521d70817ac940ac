"""A CLIP-format tokenizer (vocab.json + merges.txt) for the shapes captions.

Word level: every caption word becomes one token ``word</w>`` reached through merges that spell it
letter by letter, beside the 256 byte-level characters (and their ``</w>`` forms) that CLIP's
byte-level BPE falls back to, and the two special tokens. transformers' ``CLIPTokenizer`` and
sdrt's own tokenizer read these files and give the same ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from .shapes_data import BACKGROUNDS, COLOURS, SHAPES, SIZE_RANGES

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MAX_LENGTH = 77
VOCABULARY: tuple[str, ...] = tuple(
    dict.fromkeys(["a", "on", "background", *SIZE_RANGES, *COLOURS, *SHAPES, *BACKGROUNDS])
)


def byte_characters() -> dict[int, str]:
    """CLIP's (GPT-2's) map of the 256 bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def _apply_merges(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """BPE on one word: merge the best-ranked adjacent pair until none is in ``ranks``."""
    while len(symbols) > 1:
        pairs = [(ranks.get(p, len(ranks)), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        symbols = [*symbols[:i], symbols[i] + symbols[i + 1], *symbols[i + 2 :]]
    return symbols


def build_vocab(words: tuple[str, ...] = VOCABULARY) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token -> id) and merges that turn each word into the single token ``word</w>``.

    For each word, BPE runs with the merges so far; while it ends in several symbols, the merge of
    the first two is appended. Appended merges rank below all earlier ones, so words already
    handled keep merging the same way.
    """
    tokens = list(byte_characters().values())
    tokens += [t + "</w>" for t in tokens]
    seen = set(tokens)
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        symbols = _apply_merges(list(word[:-1]) + [word[-1] + "</w>"], ranks)
        while len(symbols) > 1:
            pair = (symbols[0], symbols[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            if pair[0] + pair[1] not in seen:
                seen.add(pair[0] + pair[1])
                tokens.append(pair[0] + pair[1])
            symbols = _apply_merges(symbols, ranks)
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer_files(folder: str | Path) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab()
    vocab_file = folder / "vocab.json"
    merges_file = folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    merges_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def make_clip_tokenizer(folder: str | Path):  # -> transformers.CLIPTokenizer
    """transformers' ``CLIPTokenizer`` on freshly written files (SD 1.x settings: pad with eos, 77)."""
    from transformers import CLIPTokenizer

    vocab_file, merges_file = write_tokenizer_files(folder)
    return CLIPTokenizer(
        str(vocab_file),
        str(merges_file),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=MAX_LENGTH,
    )
