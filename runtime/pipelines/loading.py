"""What ``DiffusionPipeline.from_pretrained`` reads besides the components a class names: the VAE encoder a
pipeline shares as part of ``pipe.vae``, and the bundle's scheduler."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError


def shared_vae_encoder(
    cls: type[Any], bundle: Bundle, provider: str, names: tuple[str, ...]
) -> tuple[str, ...]:
    """The VAE encoder (and the preview decoder) too, where the bundle has them for ``provider``: ``pipe.vae``
    is the whole VAE, as in diffusers, so ``StableDiffusionImg2ImgPipeline(**pipe.components)`` can encode."""
    if "vae" not in cls.parts:
        return ()
    shared = ("vae_encoder", "vae_preview_decoder")
    return tuple(n for n in shared if n not in names and _has_engine(bundle, n, provider))


def _has_engine(bundle: Bundle, name: str, provider: str) -> bool:
    record = bundle.components.get(name)
    if record is None:
        return False
    if provider == "tensorrt":
        return bool(record.plans)
    if provider == "openvino":
        return record.openvino is not None
    graphs = [f for f in (record.ort.file if record.ort else None, record.onnx) if f]
    return any((bundle.path / f).is_file() for f in graphs)


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
