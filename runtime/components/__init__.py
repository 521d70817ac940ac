"""The components of a bundle, one class each (see ``base.Component``), and the registry that finds them.

The build exports, in this order, every registered component the model has (``components_of``); the
runtime wraps each engine in the class that exported it (``component_class``). A new component is a
new subclass and one line here.
"""

from __future__ import annotations

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.engines.open import open_engine
from sdrt.runtime.errors import BundleError

from .adapter import MultiAdapter, T2IAdapter
from .base import Component, ModelInfo
from .controlnet import ControlNet, MultiControlNetModel
from .deepcache import DeepCacheFullUNet, DeepCacheShallowUNet
from .depth_estimator import DepthEstimator
from .image_encoder import ImageEncoder, PaintByExampleEncoder
from .image_projection import ImageProjection
from .safety_checker import SafetyChecker
from .text_encoder import LDMBertEncoder, TextEncoder, TextEncoder2
from .transformer import DiTTransformer
from .unet import LatentUNet2D, UncondUNet, UNet
from .vae import PreviewVaeDecoder, TinyVaeEncoder, Vae, VaeDecoder, VaeEncoder, VqVaeDecoder

COMPONENTS: list[type[Component]] = [
    TextEncoder,
    TextEncoder2,
    LDMBertEncoder,
    UNet,
    DeepCacheFullUNet,
    DeepCacheShallowUNet,
    UncondUNet,
    LatentUNet2D,
    DiTTransformer,
    ControlNet,
    ImageProjection,
    T2IAdapter,
    VaeEncoder,
    TinyVaeEncoder,
    VaeDecoder,
    VqVaeDecoder,
    PreviewVaeDecoder,
    DepthEstimator,
    SafetyChecker,
    ImageEncoder,
    PaintByExampleEncoder,
]


def components_of(model: ModelInfo) -> list[type[Component]]:
    """The components a model folder has, in build order."""
    return [variant for cls in COMPONENTS for variant in cls.variants(model)]


def component_class(name: str, model_class: str) -> type[Component]:
    """The class of the bundle component ``name`` exported from a ``model_class`` module."""
    for cls in COMPONENTS:
        if cls.serves(name) and model_class in cls.model_classes:
            return cls
    raise BundleError(
        f"component {name!r} (exported from {model_class}) is not one this sdrt knows; upgrade sdrt or rebuild "
        "the bundle with build-engine"
    )


def open_component(bundle: Bundle, name: str, provider: str) -> Component:
    """The bundle's component ``name`` on ``provider``: its engine in the class that exported it."""
    record = bundle.record(name)
    cls = component_class(name, record.class_name)
    component = cls(open_engine(bundle, name, provider), record, bundle.manifest)
    component.bundle, component.provider = bundle, provider
    return component


__all__ = [
    "COMPONENTS",
    "Component",
    "ControlNet",
    "DeepCacheFullUNet",
    "DeepCacheShallowUNet",
    "DiTTransformer",
    "LDMBertEncoder",
    "DepthEstimator",
    "ImageEncoder",
    "PaintByExampleEncoder",
    "ImageProjection",
    "ModelInfo",
    "MultiAdapter",
    "MultiControlNetModel",
    "PreviewVaeDecoder",
    "SafetyChecker",
    "TextEncoder",
    "T2IAdapter",
    "TextEncoder2",
    "TinyVaeEncoder",
    "UNet",
    "LatentUNet2D",
    "UncondUNet",
    "Vae",
    "VaeDecoder",
    "VaeEncoder",
    "VqVaeDecoder",
    "component_class",
    "components_of",
    "open_component",
]
