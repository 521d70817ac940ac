"""Write CLIP's tokenizer files (vocab.json, merges.txt, as transformers' CLIPTokenizer reads them) from
OpenAI's BPE merges file, ``bpe_simple_vocab_16e6.txt.gz`` (shipped in the ``open_clip_torch`` and
``clip`` packages), the way CLIP builds its vocabulary: the 256 byte symbols, the same with ``</w>``, one
token per merge (the first 48,894), then ``<|startoftext|>`` and ``<|endoftext|>``: 49,408 tokens.

    python tools/clip_tokenizer_files.py bpe_simple_vocab_16e6.txt.gz export/model/configs/clip
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

MERGES = 49152 - 256 - 2


def byte_symbols() -> list[str]:
    """GPT-2's byte -> printable character table, in its order (printable bytes first)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols, extra = dict.fromkeys(printable), 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = 256 + extra
            extra += 1
    return [chr(symbols.get(b) or b) for b in symbols]


def main(source: str, out: str) -> None:
    lines = gzip.open(source).read().decode("utf-8").split("\n")[1 : MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    symbols = byte_symbols()
    vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges)]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    print(f"{len(vocab)} tokens, {len(merges)} merges -> {folder}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
