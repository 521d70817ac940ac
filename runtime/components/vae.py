"""The VAE, exported as two graphs: ``vae_encoder`` (``image`` [-1, 1] -> ``moments``: mean and log
variance; a tiny VAE's (``AutoencoderTiny``) -> ``latent``: the latents themselves) and ``vae_decoder``
(``latent``, already divided by the scaling factor -> ``image``). At run time ``pipe.vae`` joins them with
diffusers' ``encode``/``decode`` names (:class:`Vae`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar, TypeVar

import numpy as np

from sdrt.runtime.bundle.manifest import VaeInfo
from sdrt.runtime.errors import BundleError
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)
C = TypeVar("C", bound=Component)


def _scale(config: Mapping[str, Any]) -> int:
    return 2 ** (len(config["block_out_channels"]) - 1)


class VaeEncoder(Component):
    """AutoencoderKL's encoder (with ``quant_conv``): ``vae_encoder.run(image=...)["moments"]``."""

    name = "vae_encoder"
    source = "vae"
    model_classes = ("AutoencoderKL",)
    spatial = "pixel"
    ort_model_type = "vae"
    output = "moments"

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        channels = int(config["latent_channels"]) * (2 if cls.output == "moments" else 1)
        scale = _scale(config)
        dims = {
            **ranges,
            "latent_height": _divide(ranges["height"], scale),
            "latent_width": _divide(ranges["width"], scale),
        }
        sizes = {**trace, "latent_height": trace["height"] // scale, "latent_width": trace["width"] // scale}
        return GraphSpec(
            inputs={
                "image": TensorSpec("image", F32, ("batch", int(config["in_channels"]), "height", "width"))
            },
            outputs={
                cls.output: TensorSpec(cls.output, F32, ("batch", channels, "latent_height", "latent_width"))
            },
            dims=dims,
            trace=sizes,
        )

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {"image": rng.uniform(-1.0, 1.0, size=spec.inputs["image"].concrete(sizes)).astype(np.float32)}

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        moments = model.encoder(inputs["image"])
        if getattr(model, "quant_conv", None) is not None:
            moments = model.quant_conv(moments)
        return {"moments": moments}

    def latent_distribution(self, image: Any) -> LatentDistribution | TinyLatents:
        """What diffusers' ``vae.encode(image)`` hands ``retrieve_latents``."""
        return LatentDistribution(self.run(image=image)["moments"], self.xp)


class TinyVaeEncoder(VaeEncoder):
    """AutoencoderTiny's encoder (TAESD): ``vae_encoder.run(image=...)["latent"]``, the latents themselves
    (diffusers' ``encode(image).latents``; ``latent_magnitude``/``latent_shift`` only quantize in its
    ``forward``, which pipelines never call)."""

    model_classes = ("AutoencoderTiny",)
    output = "latent"

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"latent": model.encode(inputs["image"], return_dict=False)[0]}

    def latent_distribution(self, image: Any) -> LatentDistribution | TinyLatents:
        return TinyLatents(self.run(image=image)["latent"])


class VaeDecoder(Component):
    """AutoencoderKL's (or AutoencoderTiny's) decoder: ``vae_decoder.run(latent=...)["image"]``, about
    [-1, 1]."""

    name = "vae_decoder"
    source = "vae"
    model_classes: ClassVar[tuple[str, ...]] = ("AutoencoderKL", "AutoencoderTiny")
    spatial = "latent"
    ort_model_type = "vae"

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        scale, channels = _scale(config), int(config["latent_channels"])
        lh, lw = ranges["latent_height"], ranges["latent_width"]
        dims = {**ranges, "height": (lh[0] * scale, lh[1] * scale), "width": (lw[0] * scale, lw[1] * scale)}
        sizes = {**trace, "height": trace["latent_height"] * scale, "width": trace["latent_width"] * scale}
        return GraphSpec(
            inputs={
                "latent": TensorSpec("latent", F32, ("batch", channels, "latent_height", "latent_width"))
            },
            outputs={
                "image": TensorSpec("image", F32, ("batch", int(config["out_channels"]), "height", "width"))
            },
            dims=dims,
            trace=sizes,
        )

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"image": model.decode(inputs["latent"], return_dict=False)[0]}


class PreviewVaeDecoder(VaeDecoder):
    """A tiny VAE's decoder beside the full VAE (``build-engine --preview-vae``): ``vae_preview_decoder.run(
    latent=...)["image"]`` from the pipeline's latents as they are (its own scaling factor, 1.0 for TAESD, is
    divided out inside the graph), about [-1, 1]; cheap, approximate previews."""

    name = "vae_preview_decoder"
    source = "vae_preview"
    model_classes = ("AutoencoderTiny",)

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        latent = inputs["latent"] / model.config.scaling_factor
        return {"image": model.decode(latent, return_dict=False)[0]}


class VqVaeDecoder(VaeDecoder):
    """Latent diffusion's ``vqvae`` part (VQModel: ``quantize``, ``post_quant_conv`` and the decoder; or an
    AutoencoderKL, as LDMTextToImagePipeline folders have it), exported as the bundle's ``vae_decoder``."""

    source = "vqvae"
    model_classes = ("VQModel", "AutoencoderKL")


def _divide(pixels: Range, scale: int) -> Range:
    return pixels[0] // scale, pixels[1] // scale


class LatentDistribution:
    """diffusers' ``DiagonalGaussianDistribution`` over the VAE encoder's moments (mean, logvar)."""

    def __init__(self, moments: Any, xp: ModuleType) -> None:
        half = moments.shape[1] // 2
        self.mean, self.logvar = moments[:, :half], xp.clip(moments[:, half:], -30.0, 20.0)
        self.std = xp.exp(0.5 * self.logvar)

    def sample(self, generator: Any) -> Any:
        """mean + std * noise, the noise drawn once from ``generator.standard_normal``."""
        noise = generator.standard_normal(size=self.mean.shape)
        return self.mean + self.std * noise.astype(self.mean.dtype)

    def mode(self) -> Any:
        return self.mean


class TinyLatents:
    """A tiny VAE's encoding: diffusers' ``retrieve_latents`` takes its ``.latents`` for every sample mode,
    drawing no noise."""

    def __init__(self, latents: Any) -> None:
        self.latents = latents

    def sample(self, generator: Any) -> Any:
        return self.latents

    def mode(self) -> Any:
        return self.latents


class Vae:
    """``vae.encode(image)`` -> :class:`LatentDistribution`; ``vae.decode(latent)`` -> image in [-1, 1].

    ``decode`` takes latents already divided by ``vae.config.scaling_factor`` (as diffusers' ``decode``).
    """

    def __init__(
        self,
        decoder: VaeDecoder | None,
        encoder: VaeEncoder | None,
        info: VaeInfo | None,
        preview_decoder: PreviewVaeDecoder | None = None,
    ) -> None:
        info = info or VaeInfo()
        self.decoder = decoder
        self.encoder = encoder
        self.preview_decoder = preview_decoder
        self.config = SimpleNamespace(
            scaling_factor=info.scaling_factor,
            shift_factor=info.shift_factor,
            latent_channels=info.latent_channels,
        )

    @classmethod
    def from_engines(cls, engines: Mapping[str, Component], info: VaeInfo | None) -> Vae:
        """The VAE over a pipeline's opened engines: ``vae_decoder``, ``vae_encoder``, ``vae_preview_decoder``
        where there."""
        return cls(
            _engine(engines, "vae_decoder", VaeDecoder),
            _engine(engines, "vae_encoder", VaeEncoder),
            info,
            _engine(engines, "vae_preview_decoder", PreviewVaeDecoder),
        )

    def decode(self, latent: Any) -> Any:
        if self.decoder is None:
            raise BundleError("this bundle has no vae_decoder engine; rebuild it with build-engine")
        return self.decoder.run(latent=latent)["image"]

    def decode_preview(self, latents: Any) -> Any:
        """A cheap, approximate image in [-1, 1] of the pipeline's ``latents`` as they are (in a callback, or
        ``output_type="latent"``), by the tiny VAE built with ``build-engine --preview-vae``."""
        if self.preview_decoder is None:
            raise BundleError(
                "this bundle has no vae_preview_decoder engine; rebuild it with build-engine --preview-vae TAESD_DIR "
                "(an AutoencoderTiny folder: TAESD for SD 1.x/2.x, TAESDXL for SDXL)"
            )
        return self.preview_decoder.run(latent=latents)["image"]

    def encode(self, image: Any) -> LatentDistribution | TinyLatents:
        if self.encoder is None:
            raise BundleError(
                "this bundle has no vae_encoder engine (needed for img2img and inpainting); rebuild it with "
                "build-engine including the vae_encoder component"
            )
        return self.encoder.latent_distribution(image)


def _engine(engines: Mapping[str, Component], name: str, kind: type[C]) -> C | None:
    engine = engines.get(name)
    return engine if isinstance(engine, kind) else None
