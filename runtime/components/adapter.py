"""T2I-Adapters: ``image`` (the conditioning image in [0, 1] at pixel size) -> ``feature_0..N-1``, the feature
maps diffusers' ``T2IAdapter`` returns (unscaled: the pipeline applies ``adapter_conditioning_scale``).

A bundle may hold several (``adapter``, ``adapter_1``... or ``adapter_NAME``), one class per model-folder part
made by :meth:`T2IAdapter.variants`; several at once are summed with their weights by :class:`MultiAdapter`.
Their UNet takes the features as ``down_intrablock_additional_residual_0..N-1`` inputs
(``UNet.graph(adapter_residuals=N)``, see ``intrablock_specs``), added where diffusers' UNet adds its
``down_intrablock_additional_residuals``: after each down block's layers (a cross-attention block's before its
downsampler, a plain block's after it), then, where the shape fits, after the mid block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .controlnet import derived_ranges, level_dim
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)
ADAPTER_CLASSES = ("T2IAdapter",)
_NAME = re.compile(r"^adapter(_[a-z0-9_]+)?$")
# diffusers' T2IAdapter defaults
DEFAULT_CHANNELS = (320, 640, 1280, 1280)
DEFAULT_IN_CHANNELS = 3
DEFAULT_DOWNSCALE = 8


def adapter_features(config: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(channels, pixels per feature pixel) of each feature map a ``T2IAdapter`` config returns."""
    channels = [int(c) for c in config.get("channels") or DEFAULT_CHANNELS]
    factor = int(config.get("downscale_factor") or DEFAULT_DOWNSCALE)
    kind = config.get("adapter_type", "full_adapter")
    if kind == "full_adapter_xl":  # one downsampling block, the third
        return [(c, factor * (2 if i >= 2 else 1)) for i, c in enumerate(channels)]
    if kind == "light_adapter":  # one block per width, then one more at the last width
        return [(c, factor * 2**i) for i, c in enumerate([*channels, channels[-1]])]
    return [(c, factor * 2**i) for i, c in enumerate(channels)]


def intrablock_levels(unet: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(channels, level) where the UNet adds each ``down_intrablock_additional_residual`` (level k: 2**k
    times smaller than the latents): one per down block, then the mid block's."""
    channels = [int(c) for c in unet["block_out_channels"]]
    types = list(unet.get("down_block_types") or [])
    levels = []
    for i, (width, kind) in enumerate(zip(channels, types)):
        plain = "CrossAttn" not in kind and i < len(channels) - 1  # added after its downsampler
        levels.append((width, i + 1 if plain else i))
    return [*levels, (channels[-1], len(channels) - 1)]


def feature_levels(config: Mapping[str, Any], scale_factor: int) -> list[tuple[int, int]]:
    """(channels, level) of each feature in latent units (``scale_factor``: pixels per latent pixel); a
    level of -1 where a feature is not a power-of-two reduction of the latents."""
    levels = []
    for width, factor in adapter_features(config):
        ratio, exact = divmod(factor, scale_factor)
        power = ratio.bit_length() - 1
        levels.append((width, power if exact == 0 and ratio == 2**power else -1))
    return levels


def intrablock_specs(
    unet: Mapping[str, Any], count: int, prefix: str = "down_intrablock_additional_residual_"
) -> tuple[dict[str, TensorSpec], dict[str, tuple[str, int, int]]]:
    """The UNet's first ``count`` adapter inputs and the derived dims they use."""
    specs: dict[str, TensorSpec] = {}
    derived: dict[str, tuple[str, int, int]] = {}
    for i, (channels, level) in enumerate(intrablock_levels(unet)[:count]):
        h, w = level_dim("latent_height", level), level_dim("latent_width", level)
        specs[f"{prefix}{i}"] = TensorSpec(f"{prefix}{i}", F32, ("batch", channels, h, w))
        if level:
            derived |= {h: ("latent_height", 1, 2**level), w: ("latent_width", 1, 2**level)}
    return specs, derived


def vae_scale(configs: Mapping[str, Mapping[str, Any]]) -> int:
    """Pixels per latent pixel of a model folder's VAE."""
    vae = configs.get("vae") or {}
    return 2 ** (len(vae.get("block_out_channels") or (0, 0, 0, 0)) - 1)


class T2IAdapter(Component):
    """``adapter(image)`` -> the list of feature maps, as diffusers' ``T2IAdapter`` (full, XL and light)."""

    name = "adapter"
    source = "adapter"
    model_classes = ADAPTER_CLASSES
    spatial = "pixel"

    @classmethod
    def variants(cls, model: ModelInfo) -> list[type[Component]]:
        """One class per adapter part of the model (``adapter``, ``adapter_1``, ``adapter_NAME``)."""
        parts = [p for p, (_, c) in model.classes.items() if _NAME.match(p) and c in cls.model_classes]
        return [type(cls.__name__, (cls,), {"name": part, "source": part}) for part in parts]

    @classmethod
    def serves(cls, name: str) -> bool:
        return bool(_NAME.match(name))

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        scale = vae_scale(model.configs)
        channels = int(config.get("in_channels") or DEFAULT_IN_CHANNELS)
        inputs = {"image": TensorSpec("image", F32, ("batch", channels, "height", "width"))}
        outputs: dict[str, TensorSpec] = {}
        derived: dict[str, tuple[str, int, int]] = {}  # the feature sizes, from the image's (whole blocks)
        for i, (width, level) in enumerate(feature_levels(config, scale)):
            h, w = level_dim("latent_height", level), level_dim("latent_width", level)
            outputs[f"feature_{i}"] = TensorSpec(f"feature_{i}", F32, ("batch", width, h, w))
            derived |= {h: ("height", 1, scale * 2**level), w: ("width", 1, scale * 2**level)}
        spec = GraphSpec(
            inputs=inputs, outputs=outputs, dims=dict(ranges), trace=dict(trace), derived=derived
        )
        spec.dims.update(derived_ranges(ranges, derived))
        spec.trace.update(spec.with_derived(dict(trace)))
        return spec

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """A conditioning image in [0, 1]."""
        shape = spec.inputs["image"].concrete(sizes)
        return {"image": np.random.default_rng(seed).uniform(0.0, 1.0, size=shape).astype(np.float32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {f"feature_{i}": f for i, f in enumerate(model(inputs["image"]))}

    # ---- the runtime wrapper ---------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        channels = self.record.inputs["image"].shape[1]
        return channels if isinstance(channels, int) else DEFAULT_IN_CHANNELS

    @property
    def downscale_factor(self) -> int:
        """Pixels per pixel of its first feature: the image's height and width must be multiples of it."""
        info = self.manifest.adapters.get(self.name)
        return info.downscale_factor if info else 8

    def __call__(self, image: Any) -> list[Any]:
        """The feature maps of ``image`` (NCHW in [0, 1] at the call's pixel size)."""
        outputs = self.run(image=self.xp.asarray(image, dtype=self.xp.float32))
        return [outputs[f"feature_{i}"] for i in range(len(outputs))]


class MultiAdapter:
    """Several adapters at once: each one's features for its own image, weighted and summed (diffusers'
    ``MultiAdapter``: weights 1 / count unless given)."""

    def __init__(self, adapters: Sequence[T2IAdapter]) -> None:
        if len(adapters) < 2:
            raise InputError("MultiAdapter takes two adapters or more; use the one adapter itself")
        self.adapters = list(adapters)
        factors = {a.downscale_factor for a in self.adapters}
        if len(factors) > 1:
            raise InputError(f"the adapters of a MultiAdapter must share one downscale factor, got {factors}")

    def __len__(self) -> int:
        return len(self.adapters)

    @property
    def downscale_factor(self) -> int:
        return self.adapters[0].downscale_factor

    def __call__(self, xs: Sequence[Any], adapter_weights: Sequence[float] | None = None) -> list[Any]:
        weights = (
            [1.0 / len(self.adapters)] * len(self.adapters) if adapter_weights is None else adapter_weights
        )
        if len(xs) != len(self.adapters) or len(weights) != len(self.adapters):
            raise InputError(
                f"{len(self.adapters)} adapters need as many images and weights, got {len(xs)} and {len(weights)}"
            )
        total: list[Any] = []
        for x, weight, adapter in zip(xs, weights, self.adapters):
            features = [f * np.float32(weight) for f in adapter(x)]
            total = features if not total else [a + b for a, b in zip(total, features)]
        return total
