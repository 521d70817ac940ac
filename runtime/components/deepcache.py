"""Step caching (DeepCache, Ma et al. 2023): the UNet split at a *branch* of its skip connections.

``unet_deepcache_full`` is the whole UNet that also returns ``cached_feature``: the hidden state entering the
branch's up-block layer. ``unet_deepcache_shallow`` runs only the shallow part around that branch (the time
embedding, ``conv_in``, the down layers before the branch, the up layers from it on, ``conv_out``) on a cached
feature, so the deep blocks run only on the full steps.

Branches are numbered as DeepCache's ``DeepCacheSDHelper.set_params(cache_branch_id=...)``: branch ``b`` is
block ``b // 3`` (counted from the outermost: the first down block, the last up block) and layer ``b % 3``;
the shallow part runs that block's down layers before ``layer`` and its up layers numbered from the block's
end up to ``layer`` (branch 0: ``conv_in``, the last up layer, ``conv_out``), and every block outside it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdrt.runtime.tensors import TensorSpec

from .base import ModelInfo
from .controlnet import derived_ranges, level_dim
from .graph import GraphSpec, Range
from .unet import UNet

F32 = np.dtype(np.float32)
LAYERS_PER_BLOCK_ID = 3  # DeepCache numbers a block's layers 0..2 whatever its layer count
FEATURE = "cached_feature"


@dataclass(frozen=True)
class Branch:
    """Where the UNet is split: DeepCache's ``cache_block_id`` and ``cache_layer_id``."""

    block: int
    layer: int

    @classmethod
    def of(cls, branch: int) -> Branch:
        return cls(branch // LAYERS_PER_BLOCK_ID, branch % LAYERS_PER_BLOCK_ID)


def layers_per_block(config: Mapping[str, Any]) -> list[int]:
    """Each down block's resnet count (an up block has one more), outermost first."""
    count = len(config["block_out_channels"])
    layers = config.get("layers_per_block", 2)
    return [int(layers)] * count if isinstance(layers, int) else [int(n) for n in layers]


def branch_problem(config: Mapping[str, Any], branch: Any) -> str | None:
    """Why ``branch`` cannot split a UNet of ``config`` (None: it can)."""
    if isinstance(branch, bool) or not isinstance(branch, int) or branch < 0:
        return f"the branch must be a whole number from 0, got {branch!r}"
    if config.get("class_embed_type") is not None or config.get("num_class_embeds") is not None:
        return "class-conditional UNets are not split"
    if config.get("addition_embed_type") not in (None, "text_time"):
        return f"UNets with addition_embed_type={config.get('addition_embed_type')!r} are not split"
    where, layers = Branch.of(branch), layers_per_block(config)
    valid = [b * LAYERS_PER_BLOCK_ID + k for b, n in enumerate(layers) for k in range(min(n, 2) + 1)]
    if branch not in valid:
        return f"this UNet has branches {', '.join(map(str, valid))} (block {where.block}, layer {where.layer} is not one)"
    return None


def feature_spec(
    config: Mapping[str, Any], branch: int
) -> tuple[TensorSpec, dict[str, tuple[str, int, int]]]:
    """The cached feature [batch, channels, latent size / 2**block] and the derived dims it uses."""
    where, channels = Branch.of(branch), [int(c) for c in config["block_out_channels"]]
    first_up_layer = layers_per_block(config)[where.block] - where.layer  # of the block's up layers
    width = channels[where.block] if first_up_layer > 0 else channels[min(where.block + 1, len(channels) - 1)]
    h, w = level_dim("latent_height", where.block), level_dim("latent_width", where.block)
    derived = {}
    if where.block:
        derived = {h: ("latent_height", 1, 2**where.block), w: ("latent_width", 1, 2**where.block)}
    return TensorSpec(FEATURE, F32, ("batch", width, h, w)), derived


def shallow_block_types(config: Mapping[str, Any], branch: int) -> list[str]:
    """The down and up block types the shallow part runs (some of their layers)."""
    where = Branch.of(branch)
    downs = list(config["down_block_types"])[: where.block + (1 if where.layer else 0)]
    ups = list(config["up_block_types"])[len(config["up_block_types"]) - 1 - where.block :]
    return downs + ups


def _with_feature(
    spec: GraphSpec, config: Mapping[str, Any], branch: int, ranges: Mapping[str, Range]
) -> tuple:
    feature, derived = feature_spec(config, branch)
    spec.derived.update(derived)
    spec.dims.update(derived_ranges(ranges, derived))
    spec.trace.update(spec.with_derived(dict(spec.trace)))
    return feature, spec


class DeepCacheFullUNet(UNet):
    """The UNet that also returns ``cached_feature`` (built with ``build-engine --deepcache``):
    ``unet(sample, timestep, ...)`` -> (noise_pred, cached_feature)."""

    name = "unet_deepcache_full"
    build_options = ("deepcache", "prompt_chunks")

    @classmethod
    def present_in(cls, model: ModelInfo) -> bool:
        return super().present_in(model) and getattr(model, "deepcache", None) is not None

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        spec = UNet.graph(model, ranges, trace, prompt_chunks=options.get("prompt_chunks"))
        feature, spec = _with_feature(spec, model.configs[cls.source], int(options["deepcache"]), ranges)
        spec.outputs[FEATURE] = feature
        spec.extra["deepcache"] = int(options["deepcache"])
        return spec

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        captured: dict[str, Any] = {}
        hook = _capture_feature(model, Branch.of(spec.extra["deepcache"]), captured)
        try:
            outputs = UNet.forward(model, spec, inputs)
        finally:
            hook.remove()
        return {**outputs, FEATURE: captured[FEATURE]}

    def __call__(self, sample: Any, timestep: Any, encoder_hidden_states: Any = None, **given: Any) -> Any:
        outputs = self.run(**self.feeds(sample, timestep, encoder_hidden_states, **given))
        return outputs["noise_pred"], outputs[FEATURE]


class DeepCacheShallowUNet(UNet):
    """The shallow part of the UNet on a cached feature (built with ``build-engine --deepcache``):
    ``unet(sample, timestep, ..., cached_feature=)`` -> noise_pred."""

    name = "unet_deepcache_shallow"
    build_options = ("deepcache", "prompt_chunks")

    @classmethod
    def present_in(cls, model: ModelInfo) -> bool:
        return super().present_in(model) and getattr(model, "deepcache", None) is not None

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        config, branch = model.configs[cls.source], int(options["deepcache"])
        spec = UNet.graph(model, ranges, trace, prompt_chunks=options.get("prompt_chunks"))
        if not any("CrossAttn" in kind for kind in shallow_block_types(config, branch)):
            spec.inputs.pop("encoder_hidden_states", None)  # no attention in the shallow part reads it
            spec.dims.pop("sequence", None)
            spec.trace.pop("sequence", None)
        feature, spec = _with_feature(spec, config, branch, ranges)
        spec.inputs[FEATURE] = feature
        spec.extra["deepcache"] = branch
        return spec

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        added = None
        if "text_embeds" in inputs:
            added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
        noise_pred = shallow_forward(
            model,
            Branch.of(spec.extra["deepcache"]),
            inputs,
            added,
        )
        return {"noise_pred": noise_pred}

    def __call__(
        self,
        sample: Any,
        timestep: Any,
        encoder_hidden_states: Any = None,
        *,
        cached_feature: Any = None,
        **given: Any,
    ) -> Any:
        feeds = self.feeds(sample, timestep, encoder_hidden_states, **given)
        feeds[FEATURE] = cached_feature
        return self.run(**feeds)["noise_pred"]


# ---- the torch side: what the graphs compute, by the diffusers UNet's own modules and methods --------------
def _capture_feature(model: Any, where: Branch, captured: dict[str, Any]) -> Any:
    """A hook keeping, in ``captured``, the hidden state that enters the branch's first up layer."""
    block = model.up_blocks[len(model.up_blocks) - 1 - where.block]
    first = len(block.resnets) - 1 - where.layer
    if first == 0:  # the block's input: the deeper blocks' output

        def before(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            captured[FEATURE] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

        return block.register_forward_pre_hook(before, with_kwargs=True)
    attentions = getattr(block, "attentions", None)
    previous = attentions[first - 1] if attentions else block.resnets[first - 1]

    def after(module: Any, args: Any, output: Any) -> None:
        captured[FEATURE] = output[0] if isinstance(output, tuple) else output

    return previous.register_forward_hook(after)


def shallow_forward(
    model: Any, where: Branch, inputs: Mapping[str, Any], added: dict[str, Any] | None
) -> Any:
    """diffusers' ``UNet2DConditionModel.forward`` with the deep part replaced by ``inputs["cached_feature"]``."""
    sample, ehs = inputs["sample"], inputs.get("encoder_hidden_states")
    up_factor = 2**model.num_upsamplers
    forward_upsample_size = any(dim % up_factor != 0 for dim in sample.shape[-2:])
    if model.config.center_input_sample:
        sample = 2 * sample - 1.0
    t_emb = model.get_time_embed(sample=sample, timestep=inputs["timestep"])
    emb = model.time_embedding(t_emb, inputs.get("timestep_cond"))
    aug = model.get_aug_embed(emb=emb, encoder_hidden_states=ehs, added_cond_kwargs=added or {})
    emb = emb + aug if aug is not None else emb
    if model.time_embed_act is not None:
        emb = model.time_embed_act(emb)
    if ehs is not None:
        ehs = model.process_encoder_hidden_states(encoder_hidden_states=ehs, added_cond_kwargs=added or {})
    hidden = model.conv_in(sample)
    residuals: tuple[Any, ...] = (hidden,)
    downs = list(model.down_blocks[: where.block])
    if where.layer:
        downs.append(_layers(model.down_blocks[where.block], slice(0, where.layer), downsample=False))
    for block in downs:
        hidden, res = _run(block, emb, ehs, hidden_states=hidden)
        residuals += res
    hidden = inputs[FEATURE]
    count = len(model.up_blocks)
    for k in range(count - 1 - where.block, count):
        block = model.up_blocks[k]
        if k == count - 1 - where.block:
            block = _layers(block, slice(len(block.resnets) - 1 - where.layer, None))
        n = len(block.resnets)
        res, residuals = residuals[-n:], residuals[:-n]
        size = residuals[-1].shape[2:] if k < count - 1 and forward_upsample_size else None
        hidden = _run(block, emb, ehs, hidden_states=hidden, res_hidden_states_tuple=res, upsample_size=size)
    if model.conv_norm_out:
        hidden = model.conv_act(model.conv_norm_out(hidden))
    return model.conv_out(hidden)


def _run(block: Any, emb: Any, ehs: Any, **kwargs: Any) -> Any:
    if getattr(block, "has_cross_attention", False):
        kwargs["encoder_hidden_states"] = ehs
    return block(temb=emb, **kwargs)


def _layers(block: Any, layers: slice, *, downsample: bool = True) -> Any:
    """A copy of a UNet block running only ``layers`` of its (resnet, attention) pairs (and no downsampler)."""
    part = copy.copy(block)
    part._modules = dict(block._modules)  # the copy's own module table: the block itself is left as it was
    part.resnets = block.resnets[layers]
    if getattr(block, "attentions", None) is not None:
        part.attentions = block.attentions[layers]
    if not downsample and getattr(block, "downsamplers", None) is not None:
        part.downsamplers = None
    return part
