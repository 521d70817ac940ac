"""The UNets: ``sample``, ``timestep`` [, ``encoder_hidden_states``, SDXL's ``text_embeds`` and
``time_ids``, an LCM's ``timestep_cond``, the x4 upscaler's ``class_labels``] -> ``noise_pred``, the raw model output (epsilon, v or sample, as the manifest says)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from sdrt.runtime.bundle.manifest import Manifest
from sdrt.runtime.bundle.records import ComponentRecord
from sdrt.runtime.engines.base import Engine
from sdrt.runtime.errors import BundleError, InputError
from sdrt.runtime.families import family
from sdrt.runtime.tensors import TensorSpec

from .adapter import intrablock_specs
from .base import Component, ModelInfo
from .controlnet import added_condition_specs, derived_ranges, residual_specs, time_ids_for
from .graph import GraphSpec, Range
from .ip_adapter import IP_SCALE, IP_TOKENS, ip_adapter_feeds, ip_adapter_specs, set_ip_adapter_scales

F32 = np.dtype(np.float32)
INTRABLOCK = "down_intrablock_additional_residual_"


class UNet(Component):
    """``unet(sample, timestep, encoder_hidden_states, text_embeds=, time_ids=)`` -> the model output.

    UNet2DConditionModel: SD 1.x / 2.x, SDXL (``addition_embed_type="text_time"``), 9-channel inpainting.
    Built with ``controlnet_residuals`` (a bundle with ControlNets), it also takes diffusers'
    ``down_block_additional_residuals`` (``down_block_additional_residual_0..N-1``) and
    ``mid_block_additional_residual``; a call without them adds zeros (the plain UNet's output). Built with
    ``adapter_residuals=N`` (a bundle with T2I-Adapters of N features), it takes diffusers'
    ``down_intrablock_additional_residuals`` (``down_intrablock_additional_residual_0..N-1``), zeros likewise.
    A UNet whose config has ``time_cond_proj_dim`` (latent consistency models) also takes ``timestep_cond``,
    the guidance-scale embedding [batch, time_cond_proj_dim] (the latent upscaler: its noise level and pooled text).
    A UNet with class embeddings (``num_class_embeds``: the x4 upscaler's noise level) takes int64 ``class_labels``.
    """

    name = "unet"
    source = "unet"
    model_classes = ("UNet2DConditionModel",)
    spatial = "latent"
    guided = True
    ort_model_type = "unet"
    build_options: ClassVar[tuple[str, ...]] = (
        "controlnet_residuals",
        "adapter_residuals",
        "prompt_chunks",
        "ip_adapter",
    )
    latent_dims = ("latent_height", "latent_width")

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config = model.configs[cls.source]
        h, w = cls.latent_dims
        inputs = {
            "sample": TensorSpec("sample", F32, ("batch", int(config["in_channels"]), h, w)),
            "timestep": TensorSpec("timestep", F32, ("batch",)),
        }
        if "cross_attention_dim" in config:
            width = int(config["cross_attention_dim"])
            chunks = int(options.get("prompt_chunks") or 1)  # > 1: A1111's long prompts, 77 x chunks
            sequence: int | str = "sequence" if chunks > 1 else family(model.model_type).unet_sequence
            inputs["encoder_hidden_states"] = TensorSpec(
                "encoder_hidden_states", F32, ("batch", sequence, width)
            )
        if config.get("class_embed_type") == "projection":  # unCLIP: the noised image embedding
            width = int(config["projection_class_embeddings_input_dim"])
            inputs["class_labels"] = TensorSpec("class_labels", F32, ("batch", width))
        encoder_2 = model.configs.get("text_encoder_2")
        inputs |= added_condition_specs(config, int(encoder_2["projection_dim"]) if encoder_2 else None)
        if config.get("time_cond_proj_dim") is not None:
            cond = TensorSpec("timestep_cond", F32, ("batch", int(config["time_cond_proj_dim"])))
            inputs["timestep_cond"] = cond
        if config.get("num_class_embeds") is not None:  # class ids: the x4 upscaler's noise level, ImageNet's
            inputs["class_labels"] = TensorSpec("class_labels", np.dtype(np.int64), ("batch",))
        output = TensorSpec("noise_pred", F32, ("batch", int(config["out_channels"]), h, w))
        spec = GraphSpec(inputs=inputs, outputs={"noise_pred": output}, dims=dict(ranges), trace=dict(trace))
        if config.get("num_class_embeds") is not None:
            spec.extra["class_embeds"] = int(config["num_class_embeds"])
        if config.get("time_embedding_type") == "fourier":  # the latent upscaler's log-sigma timesteps
            spec.extra["timesteps"] = (-2.0, 2.0)
        if inputs.get("encoder_hidden_states") and inputs["encoder_hidden_states"].shape[1] == "sequence":
            spec.dims["sequence"] = (77, 77 * int(options["prompt_chunks"]))
            spec.trace["sequence"] = 77
        if options.get("controlnet_residuals"):
            residuals, derived = residual_specs(
                config, "down_block_additional_residual_", "mid_block_additional_residual"
            )
            spec.inputs.update(residuals)
            spec.derived.update(derived)
            spec.dims.update(derived_ranges(ranges, derived))
            spec.trace.update(spec.with_derived(dict(trace)))
        if options.get("ip_adapter"):
            spec.inputs.update(ip_adapter_specs(options["ip_adapter"], int(config["cross_attention_dim"])))
        if options.get("adapter_residuals"):
            residuals, derived = intrablock_specs(config, int(options["adapter_residuals"]))
            spec.inputs.update(residuals)
            spec.derived.update(derived)
            spec.dims.update(derived_ranges(ranges, derived))
            spec.trace.update(spec.with_derived(dict(trace)))
        return spec

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Timesteps in 0..999 (a Fourier-embedded UNet's in -2..2); class labels below the class count; SDXL's
        time ids for the size; noise elsewhere."""
        rng = np.random.default_rng(seed)
        feeds: dict[str, np.ndarray] = {}
        for name, tensor in spec.inputs.items():
            shape = tensor.concrete(sizes)
            if name == "timestep":
                low, high = spec.extra.get("timesteps", (0.0, 999.0))
                feeds[name] = rng.uniform(low, high, size=shape).astype(np.float32)
            elif name == "class_labels" and "class_embeds" in spec.extra:  # ids (a projection's: noise below)
                feeds[name] = rng.integers(0, spec.extra["class_embeds"], size=shape)
            elif name == IP_SCALE:
                feeds[name] = rng.uniform(0.2, 1.5, size=shape).astype(np.float32)
            elif name == "time_ids":
                feeds[name] = time_ids_for(sizes, shape)
            else:
                feeds[name] = rng.standard_normal(size=shape).astype(np.float32)
        return feeds

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        added = None
        if "text_embeds" in inputs:
            added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
        if (
            IP_TOKENS in inputs
        ):  # one image per adapter, its tokens already projected (the UNet's projection: identity)
            set_ip_adapter_scales(model, inputs[IP_SCALE])
            added = {**(added or {}), "image_embeds": [inputs[IP_TOKENS][:, None]]}
        down = [
            inputs[k] for k in sorted(inputs, key=_index) if k.startswith("down_block_additional_residual_")
        ]
        intrablock = [inputs[k] for k in sorted(inputs, key=_index) if k.startswith(INTRABLOCK)]
        noise_pred = model(
            inputs["sample"],
            inputs["timestep"],
            inputs["encoder_hidden_states"],
            class_labels=inputs.get("class_labels"),
            timestep_cond=inputs.get("timestep_cond"),
            added_cond_kwargs=added,
            down_block_additional_residuals=tuple(down) if down else None,
            mid_block_additional_residual=inputs.get("mid_block_additional_residual"),
            down_intrablock_additional_residuals=intrablock or None,
            return_dict=False,
        )[0]
        return {"noise_pred": noise_pred}

    def __init__(self, engine: Engine, record: ComponentRecord, manifest: Manifest) -> None:
        super().__init__(engine, record, manifest)
        unet = manifest.unet
        if unet.time_cond_proj_dim is not None and "timestep_cond" not in record.inputs:
            raise BundleError(
                f"this bundle's {self.name} has time_cond_proj_dim={unet.time_cond_proj_dim} (a latent consistency "
                "model) but its engine takes no `timestep_cond`, so the guidance embedding would be dropped; it "
                "was built by an older sdrt: rebuild it with build-engine MODEL -o BUNDLE --force"
            )
        layers = len(unet.ip_adapter_layers or ()) if IP_SCALE in record.inputs else 0
        self.ip_adapter_scale = np.ones((layers,), np.float32)  # diffusers' scale after load_ip_adapter: 1.0
        self.config = SimpleNamespace(
            in_channels=unet.in_channels,
            sample_size=unet.sample_size,
            time_cond_proj_dim=unet.time_cond_proj_dim,
            num_class_embeds=unet.num_class_embeds,
        )

    def __call__(
        self,
        sample: Any,
        timestep: Any,
        encoder_hidden_states: Any = None,
        *,
        text_embeds: Any = None,
        time_ids: Any = None,
        added_cond_kwargs: Mapping[str, Any] | None = None,
        down_block_additional_residuals: Sequence[Any] | None = None,
        mid_block_additional_residual: Any = None,
        timestep_cond: Any = None,
        down_intrablock_additional_residuals: Sequence[Any] | None = None,
        class_labels: Any = None,
        ip_hidden_states: Any = None,
        ip_adapter_scale: Any = None,
    ) -> Any:
        """diffusers' UNet arguments; a UNet built with ``--ip-adapter`` also takes ``ip_hidden_states`` (the
        projected image tokens, [batch, tokens, width]; none: no image attention) and ``ip_adapter_scale`` (one per
        image-attention layer; default: ``self.ip_adapter_scale``, what ``set_ip_adapter_scale`` set)."""
        feeds = self.feeds(
            sample,
            timestep,
            encoder_hidden_states,
            text_embeds=text_embeds,
            time_ids=time_ids,
            added_cond_kwargs=added_cond_kwargs,
            down_block_additional_residuals=down_block_additional_residuals,
            mid_block_additional_residual=mid_block_additional_residual,
            timestep_cond=timestep_cond,
            down_intrablock_additional_residuals=down_intrablock_additional_residuals,
            class_labels=class_labels,
        )
        scale = self.ip_adapter_scale if ip_adapter_scale is None else ip_adapter_scale
        feeds |= ip_adapter_feeds(self, feeds["sample"].shape[0], ip_hidden_states, scale)
        return self.run(**feeds)["noise_pred"]

    def feeds(
        self,
        sample: Any,
        timestep: Any,
        encoder_hidden_states: Any = None,
        *,
        text_embeds: Any = None,
        time_ids: Any = None,
        added_cond_kwargs: Mapping[str, Any] | None = None,
        down_block_additional_residuals: Sequence[Any] | None = None,
        mid_block_additional_residual: Any = None,
        timestep_cond: Any = None,
        down_intrablock_additional_residuals: Sequence[Any] | None = None,
        class_labels: Any = None,
    ) -> dict[str, Any]:
        """The engine's inputs for a call (diffusers' UNet arguments)."""
        sample = self.xp.asarray(sample)
        feeds: dict[str, Any] = {"sample": sample, "timestep": self._timesteps(timestep, sample.shape[0])}
        feeds |= self._residuals(sample.shape, down_block_additional_residuals, mid_block_additional_residual)
        feeds |= self._intrablock(sample.shape, down_intrablock_additional_residuals)
        if added_cond_kwargs:
            text_embeds = added_cond_kwargs.get("text_embeds", text_embeds)
            time_ids = added_cond_kwargs.get("time_ids", time_ids)
        given = {
            "encoder_hidden_states": encoder_hidden_states,
            "text_embeds": text_embeds,
            "time_ids": time_ids,
            "timestep_cond": timestep_cond,
            "class_labels": None if class_labels is None else self._labels(class_labels),
        }
        for key, value in given.items():
            if key in self.record.inputs:
                if value is None:
                    raise InputError(f"the {self.name} engine needs `{key}`")
                feeds[key] = value
        return feeds

    def _residuals(self, shape: tuple[int, ...], down: Sequence[Any] | None, mid: Any) -> dict[str, Any]:
        """The ControlNet residual inputs: the given ones, or zeros where none are given."""
        names = [n for n in self.record.inputs if n.startswith("down_block_additional_residual_")]
        if not names:
            if down is not None or mid is not None:
                raise InputError(
                    f"the {self.name} engine takes no ControlNet residuals; rebuild the bundle with "
                    "build-engine --controlnet"
                )
            return {}
        if down is None and mid is None:
            return self._zeros(shape, [*names, "mid_block_additional_residual"])
        if down is None or mid is None or len(down) != len(names):
            count = "none" if down is None else len(down)
            raise InputError(
                f"the {self.name} engine takes {len(names)} down_block_additional_residuals and a "
                f"mid_block_additional_residual, got {count} and {'none' if mid is None else 'one'}"
            )
        return {**dict(zip(names, down)), "mid_block_additional_residual": mid}

    def _zeros(self, shape: tuple[int, ...], names: Sequence[str]) -> dict[str, Any]:
        sizes = {"batch": shape[0], "latent_height": shape[2], "latent_width": shape[3]}
        zeros = {}
        for name in names:
            dims = self.record.inputs[name].shape
            zeros[name] = self.xp.zeros(tuple(_level_size(d, sizes) for d in dims), dtype=self.xp.float32)
        return zeros

    def _intrablock(self, shape: tuple[int, ...], features: Sequence[Any] | None) -> dict[str, Any]:
        """The T2I-Adapter inputs: the given feature maps, or zeros where none are given."""
        names = sorted((n for n in self.record.inputs if n.startswith(INTRABLOCK)), key=_index)
        if not names:
            if features is not None:
                raise InputError(
                    f"the {self.name} engine takes no down_intrablock_additional_residuals; rebuild the bundle "
                    "with build-engine --adapter"
                )
            return {}
        if features is None:
            return self._zeros(shape, names)
        if len(features) != len(names):
            raise InputError(
                f"the {self.name} engine takes {len(names)} down_intrablock_additional_residuals, got {len(features)}"
            )
        return dict(zip(names, features))

    def _labels(self, class_labels: Any) -> Any:
        """Class ids (int64 [batch]), or, for a projection class embedding (unCLIP), the vectors as given."""
        spec = self.record.inputs.get("class_labels")
        if spec is not None and spec.dtype == np.dtype(np.float32):
            return class_labels
        labels = class_labels.get() if hasattr(class_labels, "get") else class_labels
        return self.xp.asarray(np.asarray(labels, dtype=np.int64).reshape(-1))

    def _timesteps(self, timestep: Any, batch: int) -> Any:
        """A scalar (or one-element) timestep broadcast to float32 [batch], as diffusers' UNet does."""
        if hasattr(timestep, "get"):
            timestep = timestep.get()
        t = np.asarray(timestep, dtype=np.float32).reshape(-1)
        if t.size == 1:
            t = np.full((batch,), t[0], dtype=np.float32)
        elif t.size != batch:
            raise InputError(f"timestep has {t.size} values for a batch of {batch}")
        return self.xp.asarray(t)


def _index(name: str) -> int:
    return int(name.rsplit("_", 1)[1]) if name[-1].isdigit() else -1


def _level_size(dim: Any, sizes: Mapping[str, int]) -> int:
    """A residual dim's size: fixed, a base size, or ``latent_height_div4``: the base size / 4, rounded up."""
    if isinstance(dim, int):
        return dim
    if dim in sizes:
        return sizes[dim]
    base, divisor = dim.rsplit("_div", 1)
    return -(-sizes[base] // int(divisor))


class UncondUNet(UNet):
    """UNet2DModel (unconditional models such as DDPM's): ``sample``, ``timestep`` -> ``noise_pred``, in pixels.
    A class-conditional one (``num_class_embeds``: ImageNet consistency models) also takes int64 ``class_labels``
    (``UNet.graph`` adds it, as for the x4 upscaler's UNet2DConditionModel)."""

    model_classes = ("UNet2DModel",)
    spatial = "pixel"
    guided = False
    latent_dims = ("height", "width")

    @classmethod
    def present_in(cls, model: ModelInfo) -> bool:
        return super().present_in(model) and "vqvae" not in model.classes

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        labels = inputs.get("class_labels")
        return {
            "noise_pred": model(inputs["sample"], inputs["timestep"], class_labels=labels, return_dict=False)[
                0
            ]
        }


class LatentUNet2D(UncondUNet):
    """UNet2DModel on latent diffusion's VQ-VAE latents (LDMPipeline, LDMSuperResolutionPipeline): the same graph
    as ``UncondUNet``'s, its size dims in latent pixels."""

    spatial = "latent"
    latent_dims = ("latent_height", "latent_width")

    @classmethod
    def present_in(cls, model: ModelInfo) -> bool:
        entry = model.classes.get(cls.source)
        return entry is not None and entry[1] in cls.model_classes and "vqvae" in model.classes
