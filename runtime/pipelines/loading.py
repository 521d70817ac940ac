"""What ``DiffusionPipeline.from_pretrained`` reads besides the components a class names: the VAE encoder a
pipeline shares as part of ``pipe.vae``, and the bundle's scheduler."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.backends import get_backend
from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError


def shared_vae_encoder(cls: Any, bundle: Bundle, provider: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The VAE encoder too, where the bundle has it for ``provider``: ``pipe.vae`` is the whole VAE, as in
    diffusers, so ``StableDiffusionImg2ImgPipeline(**pipe.components)`` can encode."""
    record = bundle.components.get("vae_encoder")
    if "vae" not in cls.parts or "vae_encoder" in names or record is None:
        return ()
    return ("vae_encoder",) if get_backend(provider).can_open(bundle, record) else ()


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
