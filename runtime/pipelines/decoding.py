"""The end of every call and its size checks: the call's size against the engines' shape ranges, and VAE
decoding into diffusers' output types (NaN or Inf is an engine error, never a black picture)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.images import denormalize, postprocess

from .nan_causes import nonfinite_error
from .torch_interop import to_torch

if TYPE_CHECKING:
    from .base import DiffusionPipeline


def check_size(pipe: DiffusionPipeline, height: int, width: int) -> None:
    """Multiples of 8, inside the shape range the engines were built for (named in the error)."""
    if height % 8 != 0 or width % 8 != 0:
        raise InputError(f"`height` and `width` have to be divisible by 8 but are {height} and {width}.")
    shapes = pipe.manifest.shapes
    multiple = shapes.size_multiple
    if height % multiple != 0 or width % multiple != 0:
        raise InputError(
            f"`height` and `width` have to be multiples of {multiple} for this model (its UNet downsamples "
            f"by that factor) but are {height} and {width}."
        )
    for name, value in (("height", height), ("width", width)):
        low, high = getattr(shapes, name)
        if not low <= value <= high:
            h, w = shapes.height, shapes.width
            raise InputError(
                f"{name}={value} is outside the sizes the engines in {pipe.bundle.path} were built for: "
                f"height {h[0]}..{h[1]}, width {w[0]}..{w[1]}; pick a size in that range or rebuild with "
                "build-engine --min-size/--max-size"
            )


def decode_latents(
    pipe: DiffusionPipeline, latents: Any, output_type: str = "pil", circular_padding: int = 0
) -> Any:
    """``vae.decode(latents / scaling_factor (+ shift_factor))`` -> images of ``output_type``; NaN or Inf
    latents or pixels are an :class:`EngineError` naming the call's suspects (``nan_causes``), never a black picture.
    ``circular_padding``: latent columns wrapped around each side before decoding, their pixels cut after
    (diffusers' panorama ``decode_latents_with_padding``)."""
    if output_type == "latent":
        return latents
    if output_type not in ("pil", "np", "pt"):
        raise InputError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
    if not bool(pipe.xp.isfinite(latents).all()):
        raise nonfinite_error(pipe, "the denoising loop produced NaN/Inf latents", "unet")
    latents = latents / pipe.vae.config.scaling_factor
    if pipe.vae.config.shift_factor is not None:
        latents = latents + pipe.vae.config.shift_factor
    if circular_padding:
        pad = circular_padding
        latents = pipe.xp.concatenate([latents[..., -pad:], latents, latents[..., :pad]], axis=-1)
    images = pipe.vae.decode(latents)
    if circular_padding:
        pixels = pipe.vae_scale_factor * circular_padding
        images = images[..., pixels:-pixels]
    if not bool(pipe.xp.isfinite(images).all()):
        raise nonfinite_error(
            pipe, "the VAE decoder produced NaN/Inf pixels from finite latents", "vae_decoder"
        )
    if output_type == "pt":
        return to_torch(denormalize(images))
    return postprocess(images, output_type)
