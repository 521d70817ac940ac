"""Reading a Hugging Face CLIP tokenizer folder: vocabulary, merges, special and added tokens.

Accepted layouts, as transformers reads them:
- ``tokenizer.json`` (what transformers >= 5 saves), its ``model.vocab``/``model.merges`` and
  ``added_tokens``;
- else ``vocab.json`` + ``merges.txt`` (what SD repositories ship).
Special tokens come from ``tokenizer_config.json``; when it has no ``added_tokens_decoder`` (files
older than transformers 4.34), ``special_tokens_map.json`` overrides it. Missing ones take CLIP's
defaults. Whether an added token is matched on the raw or on the normalized text follows the
``normalized`` flags the same way transformers resolves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrt.runtime.errors import BundleError, BundleNotFoundError

SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")
_DEFAULTS = {
    "bos_token": "<|startoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
}


@dataclass
class AddedToken:
    """A token cut out of the text before BPE (``normalized``: matched after normalization)."""

    content: str
    normalized: bool = False
    lstrip: bool = False
    rstrip: bool = False


@dataclass
class TokenizerFiles:
    vocab: dict[str, int]
    merges: list[tuple[str, str]]
    specials: dict[str, str] = field(default_factory=lambda: dict(_DEFAULTS))
    added_tokens: list[AddedToken] = field(default_factory=list)
    model_max_length: int = 77


def read_tokenizer_folder(path: Path) -> TokenizerFiles:
    """Read the files of one tokenizer folder (a bundle's ``tokenizer/`` or ``tokenizer_2/``)."""
    config = _read_json(path / "tokenizer_config.json")
    source_tokens: dict[str, AddedToken] = {}
    added_ids: dict[str, int | None] = {}  # added tokens have ids beyond vocab.json (textual inversion's)
    if (path / "tokenizer.json").is_file():
        data = _read_json(path / "tokenizer.json")
        model = data.get("model", {})
        if model.get("type") != "BPE" or "vocab" not in model:
            raise BundleError(
                f"{path / 'tokenizer.json'} does not hold a BPE model: is this a CLIP tokenizer?"
            )
        vocab = model["vocab"]
        merges = [_json_merge(m) for m in model.get("merges", [])]
        for entry in data.get("added_tokens", []):
            source_tokens[entry["content"]] = _added_token(entry)
            added_ids[entry["content"]] = entry.get("id")
    elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        vocab = _read_json(path / "vocab.json")
        merges = _read_merges(path / "merges.txt")
    else:
        raise BundleNotFoundError(
            f"No CLIP tokenizer in {path}: it needs vocab.json and merges.txt (or tokenizer.json); "
            "build-engine copies them from the model's tokenizer/ folder"
        )
    decoder = config.get("added_tokens_decoder")
    if decoder:  # files saved by transformers >= 4.34: these entries define the added tokens
        source_tokens = {e["content"]: _added_token(e) for e in decoder.values()}
        added_ids.update({e["content"]: _token_id(key) for key, e in decoder.items()})
        values = {key: config.get(key) for key in SPECIAL_KEYS}
    else:  # older files: special_tokens_map.json overrides tokenizer_config.json
        special_map = _read_json(path / "special_tokens_map.json")
        values = {key: special_map.get(key, config.get(key)) for key in SPECIAL_KEYS}
    added = dict(source_tokens)
    specials: dict[str, str] = {}
    for key in SPECIAL_KEYS:  # in this order: the last definition of a shared content wins
        value = values[key] if values[key] is not None else _DEFAULTS[key]
        token = _added_token(value)
        specials[key] = token.content
        added[token.content] = source_tokens.get(token.content, token)
    for content, token_id in added_ids.items():
        if token_id is not None:
            vocab.setdefault(content, token_id)
    files = TokenizerFiles(vocab=vocab, merges=merges, specials=specials, added_tokens=list(added.values()))
    max_length = config.get("model_max_length")
    if isinstance(max_length, int) and 0 < max_length < 10**8:
        files.model_max_length = max_length
    return files


def _token_id(key: Any) -> int | None:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def _added_token(value: str | dict[str, Any]) -> AddedToken:
    if isinstance(value, str):
        return AddedToken(value, normalized=False)
    special = bool(value.get("special", True))
    return AddedToken(
        value["content"],
        normalized=bool(value.get("normalized", not special)),
        lstrip=bool(value.get("lstrip", False)),
        rstrip=bool(value.get("rstrip", False)),
    )


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BundleError(f"Tokenizer file {path} is not valid JSON: {error}") from error


def _json_merge(merge: str | list[str]) -> tuple[str, str]:
    """A tokenizer.json merge: "a b" (older files) or ["a", "b"] (tokenizers >= 0.20)."""
    first, second = merge.split(" ", 1) if isinstance(merge, str) else merge
    return first, second


def _read_merges(path: Path) -> list[tuple[str, str]]:
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#version") or not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise BundleError(
                f"{path} line {number}: a merge is two tokens separated by one space, got {line!r}"
            )
        merges.append((parts[0], parts[1]))
    return merges
