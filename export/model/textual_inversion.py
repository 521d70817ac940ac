"""``build-engine --textual-inversion FILE[:TOKEN]``: embeddings added to the tokenizer and the text
encoder before export, by diffusers' own loader (A1111 ``.pt``/``.safetensors`` and diffusers
``learned_embeds``; a multi-vector embedding becomes ``TOKEN``, ``TOKEN_1``, ... as diffusers does)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdrt.export.errors import ModelFolderError
from sdrt.runtime.families import TEXTUAL_INVERSION, families_with

from .folder import ModelFolder, load_part, with_parts_saved


@dataclasses.dataclass(frozen=True)
class Embedding:
    file: Path
    token: str | None

    @classmethod
    def parse(cls, spec: str) -> Embedding:
        """``FILE`` or ``FILE:TOKEN`` (a path that exists as given is a file, colons and all)."""
        path = Path(spec)
        if not path.exists() and ":" in spec:
            file, token = spec.rsplit(":", 1)
            if not token.strip():
                raise ModelFolderError(
                    f"--textual-inversion {spec}: the token after ':' is empty; pass FILE:TOKEN, or FILE alone "
                    "to use the token the file names"
                )
            return cls(Path(file), token)
        return cls(path, None)

    def __str__(self) -> str:
        return f"{self.file}:{self.token}" if self.token else str(self.file)


def check_textual_inversions(folder: ModelFolder, specs: list[str]) -> None:
    """What can be checked before any work: the model takes embeddings, the files are there."""
    if not folder.family.takes(TEXTUAL_INVERSION):
        takers = ", ".join(f.title for f in families_with(TEXTUAL_INVERSION))
        raise ModelFolderError(
            f"--textual-inversion: sdrt adds embeddings to {takers} models, not to {folder.model_type} models"
        )
    for embedding in map(Embedding.parse, specs):
        if not embedding.file.is_file():
            raise ModelFolderError(f"--textual-inversion {embedding}: no such file {embedding.file}")
        if folder.family.dual_text_encoders and not embedding.token:
            raise ModelFolderError(
                f"--textual-inversion {embedding}: an SDXL embedding file names no token; pass FILE:TOKEN"
            )


@contextlib.contextmanager
def textual_inversions_added(folder: ModelFolder, specs: list[str] | None) -> Iterator[ModelFolder]:
    """``folder`` reading its tokenizers and text encoders from a scratch folder where they are saved with
    the embeddings of ``specs`` added (removed afterwards); ``folder`` itself when there are none."""
    if not specs:
        yield folder
        return
    embeddings = [Embedding.parse(spec) for spec in specs]
    # SDXL: the file's clip_l vectors go to the first encoder, its clip_g ones to the second (as diffusers)
    pairs = {"tokenizer": "text_encoder"}
    dual = folder.family.dual_text_encoders
    if dual:
        pairs["tokenizer_2"] = "text_encoder_2"
    parts = {name: load_part(folder, name) for pair in pairs.items() for name in pair}
    for tokenizer, encoder in pairs.items():
        loader = _loader(parts[tokenizer], parts[encoder])
        for embedding in embeddings:  # one at a time, as a diffusers user calls it (its lists mishandle None)
            _add(loader, embedding, _SDXL_KEYS[encoder] if dual else None)
    with with_parts_saved(
        folder, parts, "sdrt-embeddings-", embeddings=tuple(map(str, embeddings))
    ) as changed:
        yield changed


_SDXL_KEYS = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}


def _add(loader, embedding: Embedding, sdxl_key: str | None) -> None:
    """One embedding into the loader's tokenizer and text encoder (for SDXL, the file's ``sdxl_key``)."""
    try:
        source: Any = str(embedding.file)  # a path, or for SDXL the file's tensor for this encoder
        if sdxl_key:
            from safetensors.torch import load_file

            vectors = load_file(source)
            if sdxl_key not in vectors:
                raise KeyError(
                    f"an SDXL embedding holds clip_l and clip_g tensors; this one has {sorted(vectors)}"
                )
            source = vectors[sdxl_key]
        before = set(loader.tokenizer.get_added_vocab())
        loader.load_textual_inversion(source, token=embedding.token)
    except (ValueError, KeyError, RuntimeError, OSError) as error:  # diffusers' own checks, safetensors'
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "incorrect shape" in reason:  # diffusers' message has unfilled {...} placeholders
            width = loader.text_encoder.get_input_embeddings().weight.shape[-1]
            reason = f"its vectors are not {width} wide as this model's tokens are; it was trained for another model"
        raise ModelFolderError(
            f"--textual-inversion {embedding}: diffusers cannot add it: {reason}"
        ) from error
    _check_vectors(loader, embedding, before)


def _check_vectors(loader, embedding: Embedding, before: set[str]) -> None:
    """The vectors just added are finite and not zero: either would break every prompt holding the token
    (NaN spreads through attention to the whole prompt's conditioning)."""
    import torch

    added = {t: i for t, i in loader.tokenizer.get_added_vocab().items() if t not in before}
    rows = loader.text_encoder.get_input_embeddings().weight.detach()[sorted(added.values())]
    if not torch.isfinite(rows).all():
        problem = "NaN or Inf values"
    elif (rows.abs().amax(dim=-1) == 0).any():
        problem = "a vector of zeros"
    else:
        return
    raise ModelFolderError(
        f"--textual-inversion {embedding}: its embedding ({', '.join(sorted(added))}) holds {problem}, which "
        "would break every prompt using it; the file is damaged or was not trained, use another"
    )


def _loader(tokenizer, text_encoder):
    """diffusers' ``TextualInversionLoaderMixin`` on a pipeline of only the tokenizer and text encoder."""
    import diffusers
    from diffusers.loaders import TextualInversionLoaderMixin

    class _Embeddings(diffusers.DiffusionPipeline, TextualInversionLoaderMixin):
        def __init__(self, tokenizer, text_encoder) -> None:
            super().__init__()
            self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder)

    return _Embeddings(tokenizer, text_encoder)
