"""``sdrt generate BASE PROMPT --refiner REFINER [--refiner-start 0.8]``: SDXL's base + refiner ensemble, as
diffusers' documentation runs it: the base denoises the first ``--refiner-start`` of the schedule
(``denoising_end``, ``output_type="latent"``), the refiner's image-to-image pipeline the rest
(``denoising_start``) from the base's latents."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.families import IMAGE_TO_IMAGE, task_pipeline

DEFAULT_START = 0.8  # diffusers' documentation's high_noise_frac


@dataclass(frozen=True)
class Refiner:
    """``--refiner`` (a bundle folder) and ``--refiner-start`` as given (None: not given)."""

    bundle: Path | None = None
    start: float | None = None

    @property
    def fraction(self) -> float:
        return DEFAULT_START if self.start is None else self.start

    def check(self) -> None:
        if self.bundle is None:
            if self.start is not None:
                raise InputError("--refiner-start needs --refiner REFINER_BUNDLE")
            return
        if not 0 < self.fraction < 1:
            raise InputError(
                f"--refiner-start {self.fraction}: the fraction of the schedule the base denoises, strictly "
                "between 0 and 1 (e.g. 0.8)"
            )


NO_REFINER = Refiner()


def takes(cls: type, argument: str) -> bool:
    return argument in inspect.signature(cls.__call__).parameters


def load_refiner(base: Any, path: Path, provider: str, progress: bool) -> Any:
    """The refiner bundle's image-to-image pipeline, checked against the base pipeline ``base``: one that takes
    ``denoising_start``, on latents of the base's width (channels and pixels per latent)."""
    from sdrt.runtime.bundle.bundle import open_bundle

    if not takes(type(base), "denoising_end"):
        raise InputError(
            f"--refiner: the base bundle runs {type(base).__name__}, which does not stop early for a refiner "
            "(denoising_end); use an SDXL base bundle"
        )
    bundle = open_bundle(path)
    cls = task_pipeline(bundle, IMAGE_TO_IMAGE)
    if cls is None or not takes(cls, "denoising_start"):
        raise InputError(
            f"--refiner {path}: a {bundle.model_type!r} bundle cannot refine (no image-to-image pipeline "
            "taking denoising_start); pass an SDXL refiner or base bundle"
        )
    check_latent_width(base, bundle, path)
    pipe: Any = cls.from_pretrained(path, provider=provider)
    pipe.set_progress_bar_config(disable=not progress)
    return pipe


def check_latent_width(base: Any, bundle: Any, path: Any) -> None:
    """The refiner's latents (its manifest's VAE: channels, pixels per latent) are the base pipeline's."""
    vae = bundle.manifest.vae
    theirs = (vae.latent_channels, vae.scale_factor) if vae is not None else (None, None)
    mine = (base.vae.config.latent_channels, base.vae_scale_factor)
    if mine != theirs:
        raise InputError(
            f"--refiner {path}: its latents are {theirs[0]} channels at 1/{theirs[1]} of the image size, the "
            f"base's {mine[0]} at 1/{mine[1]}; pass a refiner of the base's latent width (the same VAE family)"
        )


def refined(refiner_pipe: Any, latents: Any, prompt: str, call: dict[str, Any], start: float) -> Any:
    """The refiner's output from the base's ``latents`` (one prompt per latent), the call's seed, steps,
    guidance and negative prompt as the base had them."""
    count = len(latents)
    keep = ("num_inference_steps", "generator", "guidance_scale", "prompt_syntax")
    arguments = {k: v for k, v in call.items() if k in keep}
    if call.get("negative_prompt") is not None:
        arguments["negative_prompt"] = [call["negative_prompt"]] * count
    return refiner_pipe([prompt] * count, image=latents, denoising_start=start, **arguments)
