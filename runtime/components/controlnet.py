"""ControlNets: ``sample``, ``timestep``, ``encoder_hidden_states``, ``controlnet_cond`` -> the UNet's
residuals, ``down_block_res_sample_0..N-1`` and ``mid_block_res_sample`` (unscaled: the runtime applies
``conditioning_scale`` and guess mode's per-level scales, as diffusers' ``ControlNetModel.forward`` does).

A bundle may hold several: each is its own component (``controlnet``, ``controlnet_1``... or
``controlnet_NAME``), one class per model-folder part made by :meth:`ControlNet.variants`. Its UNet then
takes the residuals as inputs (``UNet.graph(controlnet_residuals=True)``; see ``residual_specs``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.tensors import TensorSpec

from .base import Component, ModelInfo
from .graph import GraphSpec, Range

F32 = np.dtype(np.float32)
CONTROLNET_CLASSES = ("ControlNetModel",)
_NAME = re.compile(r"^controlnet(_[a-z0-9_]+)?$")


def residual_levels(config: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(channels, level) of each down residual of a UNet-shaped config (level k: 2**k times smaller);
    12 for SD 1.x: conv_in, then each down block's layers and its downsampler."""
    channels = [int(c) for c in config["block_out_channels"]]
    layers = config.get("layers_per_block", 2)
    per_block = [int(layers)] * len(channels) if isinstance(layers, int) else [int(n) for n in layers]
    levels = [(channels[0], 0)]
    for i, (width, count) in enumerate(zip(channels, per_block)):
        levels += [(width, i)] * count
        if i < len(channels) - 1:
            levels.append((width, i + 1))
    return levels


def level_dim(dim: str, level: int) -> str:
    return dim if level == 0 else f"{dim}_div{2**level}"


def residual_specs(
    config: Mapping[str, Any], prefix: str, mid_name: str
) -> tuple[dict[str, TensorSpec], dict[str, tuple[str, int, int]]]:
    """The residual tensors (``{prefix}{i}`` and ``mid_name``) and the derived dims they use."""
    levels = residual_levels(config)
    mid = (int(config["block_out_channels"][-1]), len(config["block_out_channels"]) - 1)
    specs: dict[str, TensorSpec] = {}
    derived: dict[str, tuple[str, int, int]] = {}
    for i, (channels, level) in enumerate([*levels, mid]):
        name = mid_name if i == len(levels) else f"{prefix}{i}"
        h, w = level_dim("latent_height", level), level_dim("latent_width", level)
        specs[name] = TensorSpec(name, F32, ("batch", channels, h, w))
        if level:
            derived |= {h: ("latent_height", 1, 2**level), w: ("latent_width", 1, 2**level)}
    return specs, derived


def added_condition_specs(config: Mapping[str, Any], pooled: int | None = None) -> dict[str, TensorSpec]:
    """SDXL's ``text_embeds`` (pooled) and ``time_ids`` inputs for a ``text_time`` config (UNet or ControlNet).
    ``pooled``: the pooled embeddings' width (the second text encoder's ``projection_dim``), which tells 6 time
    ids (original size, crop, target size) from a refiner's 5 (original size, crop, aesthetic score); without
    it, 6."""
    if config.get("addition_embed_type") != "text_time":
        return {}
    time_embed, embed_input = (
        int(config["addition_time_embed_dim"]),
        int(config["projection_class_embeddings_input_dim"]),
    )
    count = 6 if pooled is None else (embed_input - pooled) // time_embed
    return {
        "text_embeds": TensorSpec("text_embeds", F32, ("batch", embed_input - count * time_embed)),
        "time_ids": TensorSpec("time_ids", F32, ("batch", count)),
    }


def time_ids_for(sizes: Mapping[str, int], shape: tuple[int, ...]) -> np.ndarray:
    """Validation time ids: the original and target size of the latent size, no crop (a refiner's 5: the
    original size, no crop, diffusers' default aesthetic score 6)."""
    height, width = sizes.get("latent_height", 64) * 8, sizes.get("latent_width", 64) * 8
    values = [height, width, 0, 0, height, width] if shape[-1] == 6 else [height, width, 0, 0, 6.0]
    return np.broadcast_to(np.array(values, np.float32), shape).copy()


def derived_ranges(ranges: Mapping[str, Range], derived: Mapping[str, tuple[str, int, int]]) -> dict:
    return {
        dim: (-(-ranges[base][0] * mul // div), -(-ranges[base][1] * mul // div))
        for dim, (base, mul, div) in derived.items()
    }


class ControlNet(Component):
    """``controlnet(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=1.0,
    guess_mode=False, added_cond_kwargs=None)`` -> (down residuals, mid residual), as diffusers'
    ``ControlNetModel`` (SDXL's, ``addition_embed_type="text_time"``, also takes ``text_embeds`` and ``time_ids``)."""

    name = "controlnet"
    source = "controlnet"
    model_classes = CONTROLNET_CLASSES
    spatial = "latent"
    guided = True
    ort_model_type = "unet"

    @classmethod
    def variants(cls, model: ModelInfo) -> list[type[Component]]:
        """One class per ControlNet part of the model (``controlnet``, ``controlnet_1``, ``controlnet_NAME``)."""
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
        width = int(config["cross_attention_dim"])
        embedding = config.get("conditioning_embedding_out_channels") or (16, 32, 96, 256)
        factor = 2 ** (len(embedding) - 1)  # the conditioning embedding's downsampling: pixels per latent
        inputs = {
            "sample": TensorSpec(
                "sample", F32, ("batch", int(config["in_channels"]), "latent_height", "latent_width")
            ),
            "timestep": TensorSpec("timestep", F32, ("batch",)),
            "encoder_hidden_states": TensorSpec("encoder_hidden_states", F32, ("batch", 77, width)),
            "controlnet_cond": TensorSpec(
                "controlnet_cond",
                F32,
                ("batch", int(config.get("conditioning_channels", 3)), "height", "width"),
            ),
        }
        inputs |= added_condition_specs(config)
        outputs, derived = residual_specs(config, "down_block_res_sample_", "mid_block_res_sample")
        derived |= {"height": ("latent_height", factor, 1), "width": ("latent_width", factor, 1)}
        spec = GraphSpec(
            inputs=inputs, outputs=outputs, dims=dict(ranges), trace=dict(trace), derived=derived
        )
        spec.dims.update(derived_ranges(ranges, derived))
        spec.trace.update(spec.with_derived(dict(trace)))
        return spec

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """The UNet's (timesteps in 0..999, SDXL's time ids, noise elsewhere) and a control image in [0, 1]."""
        from .unet import UNet

        feeds = UNet.random_inputs(spec, sizes, seed)
        shape = feeds["controlnet_cond"].shape
        feeds["controlnet_cond"] = (
            np.random.default_rng(seed + 1).uniform(0.0, 1.0, size=shape).astype(np.float32)
        )
        return feeds

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        added = None
        if "text_embeds" in inputs:
            added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
        down, mid = model(
            inputs["sample"],
            inputs["timestep"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            controlnet_cond=inputs["controlnet_cond"],
            added_cond_kwargs=added,
            return_dict=False,
        )
        outputs = {f"down_block_res_sample_{i}": d for i, d in enumerate(down)}
        return {**outputs, "mid_block_res_sample": mid}

    # ---- the runtime wrapper ---------------------------------------------------------------------
    @property
    def global_pool_conditions(self) -> bool:
        info = self.manifest.controlnets.get(self.name)
        return bool(info and info.global_pool_conditions)

    def __call__(
        self,
        sample: Any,
        timestep: Any,
        encoder_hidden_states: Any,
        controlnet_cond: Any,
        conditioning_scale: float = 1.0,
        guess_mode: bool = False,
        added_cond_kwargs: Mapping[str, Any] | None = None,
    ) -> tuple[list[Any], Any]:
        """(down residuals, mid residual), scaled by ``conditioning_scale`` (and, in guess mode, by
        diffusers' per-level scales from 0.1 to 1); SDXL ControlNets take ``added_cond_kwargs``
        (``text_embeds``, ``time_ids``) as diffusers' do."""
        sample = self.xp.asarray(sample)
        t = np.asarray(timestep.get() if hasattr(timestep, "get") else timestep, dtype=np.float32).reshape(-1)
        if t.size == 1:
            t = np.full((sample.shape[0],), t[0], dtype=np.float32)
        feeds = {
            "sample": sample,
            "timestep": self.xp.asarray(t),
            "encoder_hidden_states": encoder_hidden_states,
            "controlnet_cond": controlnet_cond,
        }
        for key in ("text_embeds", "time_ids"):
            if key in self.record.inputs:
                if not added_cond_kwargs or added_cond_kwargs.get(key) is None:
                    raise InputError(
                        f"the {self.name} engine (an SDXL ControlNet) needs added_cond_kwargs[{key!r}]"
                    )
                feeds[key] = added_cond_kwargs[key]
        outputs = self.run(**feeds)
        count = len(outputs) - 1
        down = [outputs[f"down_block_res_sample_{i}"] for i in range(count)]
        mid = outputs["mid_block_res_sample"]
        if guess_mode and not self.global_pool_conditions:
            scales = np.logspace(-1, 0, count + 1, dtype=np.float32) * np.float32(conditioning_scale)
            return [d * scales[i] for i, d in enumerate(down)], mid * scales[-1]
        scale = np.float32(conditioning_scale)
        return [d * scale for d in down], mid * scale


class MultiControlNetModel:
    """Several ControlNets at once: each one's residuals for its own image and scale, summed (diffusers'
    ``MultiControlNetModel``)."""

    def __init__(self, nets: Sequence[ControlNet]) -> None:
        self.nets = list(nets)

    def __len__(self) -> int:
        return len(self.nets)

    def __call__(
        self,
        sample: Any,
        timestep: Any,
        encoder_hidden_states: Any,
        controlnet_cond: Sequence[Any],
        conditioning_scale: Sequence[float],
        guess_mode: bool = False,
        added_cond_kwargs: Mapping[str, Any] | None = None,
    ) -> tuple[list[Any], Any]:
        if len(controlnet_cond) != len(self.nets) or len(conditioning_scale) != len(self.nets):
            raise InputError(
                f"{len(self.nets)} ControlNets need as many control images and scales, got "
                f"{len(controlnet_cond)} and {len(conditioning_scale)}"
            )
        down_sum: list[Any] | None = None
        mid_sum = None
        for net, image, scale in zip(self.nets, controlnet_cond, conditioning_scale):
            down, mid = net(
                sample, timestep, encoder_hidden_states, image, scale, guess_mode, added_cond_kwargs
            )
            if down_sum is None:
                down_sum, mid_sum = down, mid
            else:
                down_sum = [a + b for a, b in zip(down_sum, down)]
                mid_sum = mid_sum + mid
        return down_sum or [], mid_sum
