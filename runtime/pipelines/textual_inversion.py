"""Textual inversion at run time, torch-free: ``pipe.load_textual_inversion(file, token=...)``.

The text encoder's token-embedding table is an initializer of its ONNX graph; ONNX Runtime takes a
replacement for an initializer when a session is made (``SessionOptions.add_initializer``), and a Gather
reads a taller table as well as the old one. So loading an embedding is: the table with the new rows,
a new session over the same graph file, the tokens added to the tokenizer. OpenVINO IR and TensorRT
plans fix the table at build: there, ``build-engine --textual-inversion`` adds embeddings.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdrt.runtime.components.base import ENGINE_CHANGES, ENGINE_SWAPS
from sdrt.runtime.errors import InputError, ProviderNotAvailableError
from sdrt.runtime.text.embeddings import textual_inversion_vectors

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingTable:
    """A text encoder's table as built (read once from its graph) and the rows loaded since."""

    initializer: str
    base: np.ndarray  # [vocab, width] in the graph's dtype
    tokens: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    def table(self) -> np.ndarray:
        return np.concatenate([self.base, *self.rows]) if self.rows else self.base


def read_embedding_table(path: os.PathLike[str] | str, vocab_size: int) -> tuple[str, np.ndarray]:
    """The initializer a Gather reads token ids from: ``vocab_size`` rows (the tokenizer's vocabulary)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise ProviderNotAvailableError(
            "load_textual_inversion reads the text encoder's graph: pip install onnx"
        ) from error
    model = onnx.load(str(path))
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        data = initializers.get(node.input[0]) if node.op_type == "Gather" and node.input else None
        if data is not None and len(data.dims) == 2 and data.dims[0] == vocab_size:
            return data.name, numpy_helper.to_array(data, base_dir=os.path.dirname(os.fspath(path)))
    raise InputError(
        f"{path}: no token-embedding table of {vocab_size} rows; rebuild the bundle with this sdrt"
    )


class EmbeddingLoader:
    """``load_textual_inversion`` / ``unload_textual_inversion`` for a pipeline, which holds one
    (``pipe.embedding_loader``) and delegates its methods of these names to it. ``embedding_slots`` names each
    text encoder, its tokenizer and, for SDXL, the key of its vectors in the file (``clip_l``, ``clip_g``)."""

    def __init__(self, pipe: Any, embedding_slots: tuple[tuple[str, str, str | None], ...]) -> None:
        self.pipe = pipe
        self.embedding_slots = embedding_slots

    @property
    def engines(self) -> dict[str, Any]:
        return dict(self.pipe.engines)

    def load_textual_inversion(
        self, pretrained_model_name_or_path: str | os.PathLike[str], token: str | None = None, **kwargs: Any
    ) -> None:
        """Add an embedding file's vectors as ``token`` (and ``token_1``... for several vectors), as diffusers'
        ``load_textual_inversion``; safetensors files (diffusers' or A1111's format; SDXL: clip_l and clip_g)."""
        if kwargs:
            raise InputError(f"load_textual_inversion: sdrt takes a file and token, not {', '.join(kwargs)}")
        path = pretrained_model_name_or_path
        loads = []
        for engine_name, tokenizer_name, key in self.embedding_slots:
            token, vectors = textual_inversion_vectors(path, token, key=key)
            tokens = [token] + [f"{token}_{i}" for i in range(1, len(vectors))]
            tokenizer = getattr(self.pipe, tokenizer_name)
            taken = [t for t in tokens if t in tokenizer.vocab]
            if taken:
                raise InputError(
                    f"Token {taken[0]} already in tokenizer vocabulary. Please choose a different token name or "
                    "remove the token first (pipe.unload_textual_inversion())"
                )
            table = self._embedding_table(engine_name, tokenizer)
            if vectors.shape[1] != table.base.shape[1]:
                raise InputError(
                    f"{path}: the embedding is {vectors.shape[1]} wide, {engine_name}'s tokens are "
                    f"{table.base.shape[1]} wide; it was trained for another model"
                )
            loads.append((engine_name, tokenizer, table, tokens, vectors))
        for engine_name, tokenizer, table, tokens, vectors in loads:  # all checked: now change
            table.rows.append(vectors.astype(table.base.dtype))
            table.tokens.extend(tokens)
            self._swap_encoder(engine_name, table)
            tokenizer.add_tokens(tokens)
        logger.info("textual inversion %s: %s", path, " ".join(loads[0][3]))

    def unload_textual_inversion(self) -> None:
        """Remove every embedding loaded at run time (those built into the bundle stay)."""
        for engine_name, tokenizer_name, _ in self.embedding_slots:
            encoder = self.engines[engine_name]
            table = getattr(encoder, "embedding_table", None)
            if table is None or not table.tokens:
                continue
            getattr(self.pipe, tokenizer_name).remove_tokens(table.tokens)
            table.tokens, table.rows = [], []
            self._swap_encoder(engine_name, table)

    def _embedding_table(self, engine_name: str, tokenizer: Any) -> EmbeddingTable:
        encoder = self.engines[engine_name]
        table = getattr(encoder, "embedding_table", None)
        if table is None:
            overrides = _overrides(encoder)
            name, base = read_embedding_table(overrides.path, len(tokenizer.vocab))
            table = encoder.embedding_table = EmbeddingTable(name, base)
        return table

    def _swap_encoder(self, engine_name: str, table: EmbeddingTable) -> None:
        """A new session over the same graph, its table replaced by the taller one (the engine as loaded
        when no rows remain and no LoRA is loaded either)."""
        encoder = self.engines[engine_name]
        overrides = _overrides(encoder)
        values = {table.initializer: table.table()} if table.rows else None
        with ENGINE_CHANGES:  # not between a LoRA change's reading of the sources and its swap
            engine, sources = overrides.engine_with("textual_inversion", values)
            with ENGINE_SWAPS:  # calls running keep the encoder they started with
                encoder.engine = engine
                overrides.commit(engine, sources)


def _overrides(encoder: Any) -> Any:
    return encoder.initializer_overrides(
        "load_textual_inversion",
        "build-engine --textual-inversion FILE[:TOKEN] adds the embedding there",
    )
