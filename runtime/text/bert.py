"""BERT's WordPiece tokenizer (LDMTextToImagePipeline's ``tokenizer``) without transformers: the ``tokenizers``
package (Hugging Face's Rust tokenizers) over the folder's ``tokenizer.json``, or its ``vocab.txt`` with the
settings of ``tokenizer_config.json``; ids as ``transformers.BertTokenizer`` gives them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.errors import BundleError, InputError, InputTypeError

from .tokenizer import TokenizerOutput


class BertTokenizer:
    """``tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="np")``."""

    def __init__(self, backend: Any, pad_token_id: int, model_max_length: int) -> None:
        self.backend = backend
        self.pad_token_id = pad_token_id
        self.model_max_length = model_max_length

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> BertTokenizer:
        try:
            import tokenizers
        except ImportError as error:
            raise BundleError(
                "LDMTextToImagePipeline's BERT tokenizer needs the `tokenizers` package: pip install 'sdrt[ldm]'"
            ) from error
        path = Path(folder)
        config_file = path / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        if (path / "tokenizer.json").is_file():
            backend = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        elif (path / "vocab.txt").is_file():
            backend = tokenizers.BertWordPieceTokenizer(
                str(path / "vocab.txt"),
                lowercase=bool(config.get("do_lower_case", True)),
                strip_accents=config.get("strip_accents"),
                handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
            )
        else:
            raise BundleError(f"{path} holds neither tokenizer.json nor vocab.txt; rebuild the bundle")
        backend.no_padding()
        backend.no_truncation()
        pad = backend.token_to_id(str(config.get("pad_token", "[PAD]")))
        return cls(backend, 0 if pad is None else pad, int(config.get("model_max_length") or 512))

    def __call__(
        self,
        text: str | list[str],
        *,
        padding: bool | str = False,
        truncation: bool | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> TokenizerOutput:
        """``input_ids`` and ``attention_mask``: lists, or NumPy int64 arrays with ``return_tensors="np"``."""
        texts = [text] if isinstance(text, str) else list(text) if isinstance(text, list | tuple) else None
        if texts is None or not all(isinstance(t, str) for t in texts):
            raise InputTypeError(f"text must be a string or a list of strings, got {type(text).__name__}")
        if return_tensors not in (None, "np"):
            raise InputError(
                f"return_tensors={return_tensors!r}: sdrt's tokenizer returns lists or 'np' arrays"
            )
        length = max_length or self.model_max_length
        rows = [encoding.ids for encoding in self.backend.encode_batch(texts)]
        if truncation or (truncation is None and max_length is not None and not padding):
            rows = [r[: length - 1] + r[-1:] if len(r) > length else r for r in rows]  # keep [SEP]
        width = length if padding == "max_length" else max(map(len, rows)) if padding else 0
        masks = [[1] * len(r) + [0] * max(width - len(r), 0) for r in rows]
        rows = [r + [self.pad_token_id] * max(width - len(r), 0) for r in rows]
        if return_tensors == "np":
            if len({len(r) for r in rows}) > 1:
                raise InputError("the texts have different lengths: pass padding='max_length'")
            return TokenizerOutput(
                input_ids=np.asarray(rows, np.int64), attention_mask=np.asarray(masks, np.int64)
            )
        if isinstance(text, str):
            return TokenizerOutput(input_ids=rows[0], attention_mask=masks[0])
        return TokenizerOutput(input_ids=rows, attention_mask=masks)
