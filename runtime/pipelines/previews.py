"""Previews of a call's latents while it runs (in a ``callback_on_step_end``): cheap, approximate pictures.

The bundle's preview VAE decodes them where it has one (``build-engine --preview-vae``: TAESD, TAESDXL);
otherwise the family's latent -> RGB factors (``Family.latent_rgb``, A1111's "Approx cheap") project each
latent pixel to a colour, an image 1/8 of the size, resized up. Models with neither get no preview.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.families import find_family
from sdrt.runtime.images import postprocess, to_host

if TYPE_CHECKING:
    from PIL import Image

    from .base import DiffusionPipeline


def can_preview(pipe: DiffusionPipeline) -> bool:
    """Whether ``preview_images`` can show this pipeline's latents."""
    return _preview_decoder(pipe) is not None or _factors(pipe) is not None


def preview_images(
    pipe: DiffusionPipeline,
    latents: Any,
    rows: Sequence[int] | None = None,
    size: tuple[int, int] | None = None,
) -> list[Image.Image]:
    """PIL previews of ``latents`` (NCHW, as the loop holds them) for ``rows`` (default: all), at ``size``
    (width, height; default: the decoded size, 8 pixels per latent). Empty when the model has no preview."""
    host = to_host(latents)
    picked = host if rows is None else host[list(rows)]
    if not len(picked):
        return []
    decoder = _preview_decoder(pipe)
    if decoder is not None:
        images = postprocess(decoder.run(latent=pipe.to_xp(picked))["image"])
    else:
        factors = _factors(pipe)
        if factors is None or picked.shape[1] != len(factors):
            return []
        images = postprocess(latent_rgb(picked, factors))
    width, height = size or (picked.shape[3] * 8, picked.shape[2] * 8)
    return [image if image.size == (width, height) else image.resize((width, height)) for image in images]


def latent_rgb(latents: np.ndarray, factors: Sequence[Sequence[float]]) -> np.ndarray:
    """NCHW latents -> NCHW RGB in about [-1, 1]: each pixel's channels times the (channel, rgb) factors."""
    return np.einsum("nchw,cr->nrhw", latents.astype(np.float32), np.asarray(factors, dtype=np.float32))


def _preview_decoder(pipe: Any) -> Any:
    vae = getattr(pipe, "vae", None)
    return getattr(vae, "preview_decoder", None)


def _factors(pipe: Any) -> tuple[tuple[float, float, float], ...] | None:
    bundle = getattr(pipe, "bundle", None)
    found = find_family(bundle.model_type) if bundle is not None else None
    return found.latent_rgb if found is not None else None
