"""A small CLIP-style byte-level BPE trainer, used by the tests to make realistic vocabularies.

The layout follows OpenAI CLIP's ``vocab.json``: the 256 byte characters, the same 256 with
``</w>``, one entry per merge, then ``<|startoftext|>`` and ``<|endoftext|>``. Words are cut from
the corpus with a plain ASCII-ish regex: the vocabulary is only data for the tests, so it need
not share code with the tokenizer under test.
"""

from __future__ import annotations

import heapq
import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

_WORD = re.compile(r"[^\W\d_]+|\d|[^\s\w]+|_+")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def english_corpus() -> str:
    """English text found on any Python install: pydoc's topic pages and the license."""
    parts: list[str] = []
    try:
        from pydoc_data.topics import topics

        parts.extend(topics[k] for k in sorted(topics))
    except ImportError:  # some distributions strip pydoc_data
        pass
    stdlib = Path(os.__file__).parent
    for path in (stdlib / "LICENSE.txt", stdlib / "textwrap.py", stdlib / "argparse.py"):
        if path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def train_clip_bpe(text: str, num_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn ``num_merges`` merges (most frequent pair first, ties by pair) and build the vocab."""
    byte_char = bytes_to_unicode()
    word_freq = Counter(_WORD.findall(text.lower()))
    words: list[list[str]] = []
    freqs: list[int] = []
    for word, freq in word_freq.items():
        symbols = [byte_char[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        words.append(symbols)
        freqs.append(freq)

    pair_count: Counter[tuple[str, str]] = Counter()
    pair_words: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_count[pair] += freqs[i]
            pair_words[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_count.items()]
    heapq.heapify(heap)

    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg_count or neg_count == 0:
            continue  # stale entry
        merges.append(pair)
        merged = pair[0] + pair[1]
        touched: set[tuple[str, str]] = set()
        for i in list(pair_words[pair]):
            old = words[i]
            new: list[str] = []
            j = 0
            while j < len(old):
                if j + 1 < len(old) and old[j] == pair[0] and old[j + 1] == pair[1]:
                    new.append(merged)
                    j += 2
                else:
                    new.append(old[j])
                    j += 1
            for p in zip(old, old[1:]):
                pair_count[p] -= freqs[i]
                pair_words[p].discard(i)
                touched.add(p)
            for p in zip(new, new[1:]):
                pair_count[p] += freqs[i]
                pair_words[p].add(i)
                touched.add(p)
            words[i] = new
        for p in touched:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))

    tokens = list(byte_char.values())
    tokens += [t + "</w>" for t in tokens]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_clip_tokenizer(
    folder: Path,
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    *,
    pad_token: str = "<|endoftext|>",
    model_max_length: int = 77,
) -> Path:
    """Write vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json like SD's."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {
        "bos_token": {
            "content": "<|startoftext|>",
            "lstrip": False,
            "normalized": True,
            "rstrip": False,
            "single_word": False,
        },
        "eos_token": {
            "content": "<|endoftext|>",
            "lstrip": False,
            "normalized": True,
            "rstrip": False,
            "single_word": False,
        },
        "pad_token": pad_token,
        "unk_token": {
            "content": "<|endoftext|>",
            "lstrip": False,
            "normalized": True,
            "rstrip": False,
            "single_word": False,
        },
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = {
        "add_prefix_space": False,
        "bos_token": special["bos_token"],
        "do_lower_case": True,
        "eos_token": special["eos_token"],
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": pad_token,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": special["unk_token"],
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder
