"""CLIPTokenizer: the ids of transformers' ``CLIPTokenizer`` from a bundle's ``tokenizer/`` files, torch-free.

Reads ``vocab.json``, ``merges.txt`` and the special tokens (``tokenizer_config.json``, then
``special_tokens_map.json``): bos/eos/unk/pad, ``model_max_length``. ``do_lower_case`` is read but,
as in transformers' CLIP tokenizer, text is always lowercased. The pad token comes from the files:
SD1 pads with ``<|endoftext|>``, SD2 and SDXL's ``tokenizer_2`` with ``!`` (id 0).

Calling it behaves like transformers' ``CLIPTokenizer.__call__`` (lists by default, arrays with
``return_tensors="np"``, transformers' padding and truncation rules); the pipelines call it as diffusers
does, ``tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="np")``.
When a prompt is cut, it logs the warning diffusers gives, naming the part that was dropped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.errors import BundleError, InputError, InputTypeError

from .clip_bpe import WHITESPACE, ByteLevelBPE, normalize, split_words
from .files import AddedToken, read_tokenizer_folder

logger = logging.getLogger(__name__)


class TokenizerOutput(dict):
    """``input_ids`` and ``attention_mask``, by key or attribute (like transformers' BatchEncoding)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


class CLIPTokenizer:
    """CLIP's byte-level BPE tokenizer, giving the same ids as ``transformers.CLIPTokenizer``."""

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        *,
        bos_token: str = "<|startoftext|>",
        eos_token: str = "<|endoftext|>",
        unk_token: str = "<|endoftext|>",
        pad_token: str = "<|endoftext|>",
        model_max_length: int = 77,
        added_tokens: list[AddedToken] | None = None,
    ) -> None:
        self.bpe = ByteLevelBPE(vocab, merges, unk_token)
        self.vocab = vocab
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.unk_token = unk_token
        self.pad_token = pad_token
        self.model_max_length = model_max_length
        for name, token in (("bos", bos_token), ("eos", eos_token), ("pad", pad_token)):
            if token not in vocab:
                raise BundleError(f"The {name} token {token!r} is not in the tokenizer's vocab.json")
        self.bos_token_id = vocab[bos_token]
        self.eos_token_id = vocab[eos_token]
        self.pad_token_id = vocab[pad_token]
        if added_tokens is None:
            added_tokens = [
                AddedToken(t) for t in dict.fromkeys([bos_token, eos_token, unk_token, pad_token])
            ]
        self._added = [t for t in added_tokens if t.content in vocab]
        self._index_added()

    def _index_added(self) -> None:
        contents = {t.content for t in self._added}
        # textual inversions of several vectors: TOKEN with TOKEN_1, TOKEN_2... beside it
        self._multi_vector = {c: _vector_tokens(c, contents) for c in contents if f"{c}_1" in contents}

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], subfolder: str | None = None) -> CLIPTokenizer:
        """Load a tokenizer folder (vocab.json + merges.txt or tokenizer.json, and the special tokens)."""
        files = read_tokenizer_folder(Path(folder) / subfolder if subfolder else Path(folder))
        return cls(
            files.vocab,
            files.merges,
            **files.specials,
            model_max_length=files.model_max_length,
            added_tokens=files.added_tokens,
        )

    def encode(self, text: str) -> list[int]:
        """Ids of one text without bos/eos."""
        ids: list[int] = []
        for piece, is_token in self._split_added(text):
            if is_token:
                ids.append(self.vocab[piece])
                continue
            for word in split_words(normalize(piece)):
                ids.extend(self.bpe.word_ids(word))
        return ids

    def __call__(
        self,
        text: str | list[str],
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_dtype: type | np.dtype = np.int64,
    ) -> TokenizerOutput:
        """``input_ids`` and ``attention_mask`` as transformers' ``CLIPTokenizer`` gives them.

        With ``return_tensors=None`` (the default): lists of ints for one string, lists of lists for a list of
        strings; with ``return_tensors="np"``: NumPy arrays [batch, length] (int64, or ``return_dtype``).
        ``padding``: ``False`` (the default), ``"max_length"`` (to ``max_length``, default
        ``model_max_length``), ``"longest"`` or ``True``. ``truncation``: ``True`` cuts to ``max_length``
        (default ``model_max_length``); ``None`` cuts only when ``max_length`` is given without padding,
        as transformers does. The pipelines call it as diffusers does: ``padding="max_length",
        max_length=77, truncation=True, return_tensors="np"``.
        """
        if return_tensors not in (None, "np"):
            raise InputError(
                f"return_tensors={return_tensors!r}: sdrt's tokenizer returns lists (None) or NumPy arrays "
                "('np'); make a torch tensor with torch.from_numpy(tokenizer(..., return_tensors='np').input_ids)"
            )
        single = isinstance(text, str)
        texts = [text] if isinstance(text, str) else list(text) if isinstance(text, list | tuple) else None
        if texts is None or not all(isinstance(t, str) for t in texts):
            raise InputTypeError(f"text must be a string or a list of strings, got {type(text).__name__}")
        limit = self._truncation_limit(padding, truncation, max_length)
        rows = [self._row(t, limit, add_special_tokens) for t in texts]
        width = self._padded_width(rows, padding, max_length)
        masks = [[1] * len(r) + [0] * max(width - len(r), 0) for r in rows]
        rows = [r + [self.pad_token_id] * max(width - len(r), 0) for r in rows]
        if return_tensors == "np":
            if len({len(r) for r in rows}) > 1:
                raise InputError(
                    "the texts have different lengths, which one array cannot hold: pass padding='max_length' "
                    "(with truncation=True) or padding='longest'"
                )
            shape = (len(rows), len(rows[0]) if rows else 0)
            ids = np.asarray(rows, dtype=return_dtype).reshape(shape)
            return TokenizerOutput(
                input_ids=ids, attention_mask=np.asarray(masks, dtype=return_dtype).reshape(shape)
            )
        if single:
            return TokenizerOutput(input_ids=rows[0], attention_mask=masks[0])
        return TokenizerOutput(input_ids=rows, attention_mask=masks)

    def _truncation_limit(
        self, padding: bool | str, truncation: bool | str | None, max_length: int | None
    ) -> int | None:
        """The longest row (special tokens included) truncation allows, or None (no truncation)."""
        if truncation is None:  # transformers: cut to an explicit max_length unless padding is asked for
            cut = max_length is not None and padding in (False, "do_not_pad")
        elif truncation in (True, "longest_first", "only_first"):
            cut = True
        elif truncation in (False, "do_not_truncate"):
            cut = False
        else:
            raise InputError(f"truncation must be True, False or None, got {truncation!r}")
        return (self.model_max_length if max_length is None else max_length) if cut else None

    def _row(self, text: str, limit: int | None, add_special_tokens: bool) -> list[int]:
        content = self.encode(text)
        specials = 2 if add_special_tokens else 0
        if limit is not None and len(content) > limit - specials:
            dropped = content[max(limit - specials, 0) :]
            logger.warning(
                "The following part of your input was truncated because CLIP can only handle sequences up "
                "to %d tokens: %s",
                limit,
                [self.bpe.decode(dropped)],
            )
            content = content[: max(limit - specials, 0)]
        elif limit is None and len(content) + specials > self.model_max_length:
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence length for this "
                "model (%d > %d). Running this sequence through the model will result in indexing errors",
                len(content) + specials,
                self.model_max_length,
            )
        return [self.bos_token_id, *content, self.eos_token_id] if add_special_tokens else content

    def _padded_width(self, rows: list[list[int]], padding: bool | str, max_length: int | None) -> int:
        """The length rows are padded to (0: no padding; longer rows stay as they are)."""
        if padding is False or padding == "do_not_pad":
            return 0
        if padding is True or padding == "longest":
            return max((len(r) for r in rows), default=0)
        if padding == "max_length":
            return self.model_max_length if max_length is None else max_length
        raise InputError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}")

    def add_tokens(self, tokens: list[str]) -> int:
        """Add tokens with the next ids, as transformers' ``add_tokens`` does (normalized, not special);
        the number added."""
        added = 0
        for token in tokens:
            if token in self.vocab:
                continue
            self.vocab[token] = len(self.vocab)
            self.bpe.add_token(token, self.vocab[token])
            self._added.append(AddedToken(token, normalized=True))
            added += 1
        self._index_added()
        return added

    def remove_tokens(self, tokens: list[str]) -> None:
        """Take out tokens added last (diffusers' ``unload_textual_inversion``): ids stay contiguous."""
        for token in reversed(tokens):
            if self.vocab.get(token) != len(self.vocab) - 1:
                raise InputError(
                    f"token {token!r} was not the last one added; remove the tokens in reverse order"
                )
            self.bpe.remove_token(self.vocab.pop(token))
            self._added = [t for t in self._added if t.content != token]
        self._index_added()

    def decode(self, ids: Any) -> str:
        """Text of ids, special tokens included (as transformers' ``decode``)."""
        return self.bpe.decode(np.asarray(ids).reshape(-1).tolist())

    def expand_multi_vector_tokens(self, text: str) -> str:
        """diffusers' ``maybe_convert_prompt``: the token of a multi-vector textual inversion, ``TOKEN``,
        becomes ``TOKEN TOKEN_1 ... TOKEN_n`` (its other vectors are the added tokens ``TOKEN_1``...)."""
        if not self._multi_vector:
            return text
        for token in {piece for piece, is_token in self._split_added(text) if is_token}:
            if token in self._multi_vector:
                text = text.replace(token, self._multi_vector[token])
        return text

    def _split_added(self, text: str) -> list[tuple[str, bool]]:
        """Cut out added (special) tokens: raw-text tokens first, then normalized ones, as `tokenizers` does."""
        raw = [t for t in self._added if not t.normalized]
        normalized = [t for t in self._added if t.normalized]
        out: list[tuple[str, bool]] = []
        for piece, is_token in _split_on_tokens(text, raw):
            if is_token or not normalized:
                out.append((piece, is_token))
                continue
            out.extend(_split_on_tokens(normalize(piece), normalized))
        return out


def _vector_tokens(token: str, contents: set[str]) -> str:
    """``TOKEN TOKEN_1 ... TOKEN_n``: the added tokens of one multi-vector embedding, in order."""
    names, i = [token], 1
    while f"{token}_{i}" in contents:
        names.append(f"{token}_{i}")
        i += 1
    return " ".join(names)


def _split_on_tokens(text: str, tokens: list[AddedToken]) -> list[tuple[str, bool]]:
    """Leftmost-longest matches of the tokens' contents; lstrip/rstrip eat the whitespace beside them."""
    if not tokens or not text:
        return [(text, False)] if text else []
    out: list[tuple[str, bool]] = []
    start = i = 0
    while i < len(text):
        match = max(
            (t for t in tokens if text.startswith(t.content, i)), key=lambda t: len(t.content), default=None
        )
        if match is None:
            i += 1
            continue
        before_end, after_start = i, i + len(match.content)
        if match.lstrip:
            while before_end > start and text[before_end - 1] in WHITESPACE:
                before_end -= 1
        if match.rstrip:
            while after_start < len(text) and text[after_start] in WHITESPACE:
                after_start += 1
        if before_end > start:
            out.append((text[start:before_end], False))
        out.append((match.content, True))
        start = i = after_start
    if start < len(text):
        out.append((text[start:], False))
    return out
