"""``build-engine --textual-inversion FILE[:TOKEN]``: embeddings added to the tokenizer and the text
encoder before export, by diffusers' own loader (A1111 ``.pt``/``.safetensors`` and diffusers
``learned_embeds``; a multi-vector embedding becomes ``TOKEN``, ``TOKEN_1``, ... as diffusers does)."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sdrt.export.errors import ModelFolderError

from .folder import ModelFolder, load_part


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
            return cls(Path(file), token or None)
        return cls(path, None)

    def __str__(self) -> str:
        return f"{self.file}:{self.token}" if self.token else str(self.file)


def check_textual_inversions(folder: ModelFolder, specs: list[str]) -> None:
    """What can be checked before any work: the model takes embeddings, the files are there."""
    if folder.model_type not in ("sd1", "sd2", "inpaint"):
        raise ModelFolderError(
            f"--textual-inversion: sdrt adds embeddings to SD 1.x/2.x models; {folder.model_type} is not "
            "supported yet"
        )
    for embedding in map(Embedding.parse, specs):
        if not embedding.file.is_file():
            raise ModelFolderError(f"--textual-inversion {embedding}: no such file {embedding.file}")


@contextlib.contextmanager
def textual_inversions_added(folder: ModelFolder, specs: list[str] | None) -> Iterator[ModelFolder]:
    """``folder`` reading its tokenizer and text encoder from a scratch folder where they are saved with
    the embeddings of ``specs`` added (removed afterwards); ``folder`` itself when there are none."""
    if not specs:
        yield folder
        return
    embeddings = [Embedding.parse(spec) for spec in specs]
    tokenizer, text_encoder = load_part(folder, "tokenizer"), load_part(folder, "text_encoder")
    loader = _loader(tokenizer, text_encoder)
    for embedding in embeddings:  # one at a time, as a diffusers user calls it (its lists mishandle None)
        try:
            loader.load_textual_inversion(
                str(embedding.file), token=embedding.token, tokenizer=tokenizer, text_encoder=text_encoder
            )
        except (ValueError, KeyError, RuntimeError, OSError) as error:  # diffusers' own checks
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelFolderError(
                f"--textual-inversion {embedding}: diffusers cannot add it: {reason}"
            ) from error
    with tempfile.TemporaryDirectory(prefix="sdrt-embeddings-") as scratch:
        work = Path(scratch)
        tokenizer.save_pretrained(work / "tokenizer")
        text_encoder.save_pretrained(work / "text_encoder")
        yield dataclasses.replace(
            folder,
            parts={**folder.parts, "tokenizer": work / "tokenizer", "text_encoder": work / "text_encoder"},
            embeddings=tuple(map(str, embeddings)),
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
