"""What ``DiffusionPipeline.from_pretrained`` reads besides the components a class names: the VAE encoder a
pipeline shares as part of ``pipe.vae``, and the bundle's scheduler."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.backends import get_backend
from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError


def shared_vae_encoder(cls: Any, bundle: Bundle, provider: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The VAE encoder (and the preview decoder) too, where the bundle has them for ``provider``: ``pipe.vae``
    is the whole VAE, as in diffusers, so ``StableDiffusionImg2ImgPipeline(**pipe.components)`` can encode."""
    if "vae" not in cls.parts:
        return ()
    shared = ("vae_encoder", "vae_preview_decoder")
    backend = get_backend(provider)
    return tuple(
        n
        for n in shared
        if n not in names and n in bundle.components and backend.can_open(bundle, bundle.components[n])
    )


def bundle_scheduler(bundle: Bundle) -> Any:
    """The scheduler ``scheduler/scheduler_config.json`` names; a missing or damaged one is a BundleError."""
    from sdrt.schedulers import scheduler_from_config

    try:
        return scheduler_from_config(bundle.path / "scheduler")
    except (OSError, ValueError) as error:
        raise BundleError(
            f"{bundle.path}: {error}. Rebuild the bundle (build-engine MODEL_DIR -o {bundle.path} --force), or "
            "pass scheduler=sdrt.schedulers.<Class>.from_config(...) to from_pretrained"
        ) from error
