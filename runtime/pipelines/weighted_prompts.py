"""Prompts in AUTOMATIC1111's syntax (``prompt_syntax="a1111"``): weights, ``BREAK`` and any length.

As A1111 encodes them (``sd_hijack_clip`` and its ``EmphasisOriginal``): each prompt becomes chunks of 75
tokens with their own BOS/EOS (``sdrt.runtime.text.chunks``); the text encoder runs chunk by chunk; each
chunk's hidden states are multiplied by the token weights and scaled back to their mean before weighting
(``z * w``, then ``* old_mean / new_mean``, per prompt: A1111 takes the mean over its whole batch, which
equals this for one prompt and keeps prompts in one batch independent); the chunks are concatenated along
the sequence axis (77 x chunks). Prompts with fewer chunks than others in the call (the negative prompt
included) get chunks of the empty prompt appended, as A1111 pads its unconditional embeddings. SDXL's
pooled embeddings come from the first chunk, as A1111's.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.text.chunks import Chunk, prompt_chunks

A1111 = "a1111"
SYNTAXES = (None, "diffusers", A1111)
CHUNK_LENGTH = 77


def check_syntax(value: Any) -> str | None:
    """``prompt_syntax`` checked: None / "diffusers" (diffusers' plain prompts) or "a1111"."""
    if value not in SYNTAXES:
        raise InputError(
            f'`prompt_syntax` is {value!r}: pass "a1111" (A1111\'s weights, BREAK, long prompts) or None'
        )
    return A1111 if value == A1111 else None


def tokenized(tokenizer: Any, texts: list[str], limit: int | None) -> list[list[Chunk]]:
    """Each text's chunks, all padded with empty-prompt chunks to the longest; ``limit``: the most tokens
    (77 x chunks) the UNet takes, None when it takes any number."""
    chunked = [prompt_chunks(tokenizer, text) for text in texts]
    return pad_chunks(tokenizer, chunked, max(len(c) for c in chunked), limit)


def pad_chunks(
    tokenizer: Any, chunked: list[list[Chunk]], count: int, limit: int | None
) -> list[list[Chunk]]:
    """Every prompt's chunks padded to ``count`` with the empty prompt's chunk; refused above ``limit``."""
    if limit is not None and count * CHUNK_LENGTH > limit:
        raise InputError(
            f"the prompt takes {count} chunks of 75 tokens ({count * CHUNK_LENGTH} with BOS/EOS), but this "
            f"bundle's UNet takes at most {limit} ({limit // CHUNK_LENGTH} chunk(s)): shorten the prompt "
            f"(or the negative prompt), or rebuild the bundle with build-engine --prompt-chunks {count}"
        )
    empty = prompt_chunks(tokenizer, "")[0]
    return [c + [empty] * (count - len(c)) for c in chunked]


def encode_chunks(chunked: list[list[Chunk]], encoder: Any, layer: str, xp: ModuleType) -> tuple[Any, Any]:
    """(hidden states [prompts, 77 x chunks, D] with the weights applied, the first chunk's
    ``text_embeds`` or None)."""
    hidden, pooled = [], None
    for j in range(len(chunked[0])):
        ids = np.asarray([c[j].ids for c in chunked], dtype=np.int64)
        weights = xp.asarray(np.asarray([c[j].weights for c in chunked], dtype=np.float32))
        outputs = encoder(ids)
        if j == 0:
            pooled = outputs.get("text_embeds")
        hidden.append(emphasis(xp, outputs[layer], weights))
    return xp.concatenate(hidden, axis=1), pooled


def emphasis(xp: ModuleType, z: Any, weights: Any) -> Any:
    """A1111's ``EmphasisOriginal``: ``z * w``, rescaled to ``z``'s mean (per prompt)."""
    original = z.mean(axis=(1, 2), keepdims=True)
    weighted = z * weights[:, :, None].astype(z.dtype)
    return weighted * (original / weighted.mean(axis=(1, 2), keepdims=True))


def sequence_limit(manifest: Any) -> int | None:
    """The most prompt tokens (77 x chunks) the bundle's UNet and ControlNets take: their fixed
    ``encoder_hidden_states`` length, or the range's top for one built with ``--prompt-chunks N``."""
    limits = []
    for record in getattr(manifest, "components", {}).values():
        spec = record.inputs.get("encoder_hidden_states")
        if spec is None or len(spec.shape) < 2:
            continue
        dim = spec.shape[1]
        limits.append(dim if isinstance(dim, int) else record.dims.get(dim, (0, None))[1])
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None
