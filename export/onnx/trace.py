"""One export function per component: loaded torch module + keyword options -> one raw ONNX graph.

Exporter: the TorchScript exporter (``torch.onnx.export(dynamo=False)``, still present in torch
2.13). It traces diffusers' Python shape branches (``dim % up_factor``, ``shape[0] >= 64``) at the
trace size and turns ``dynamic_axes`` into named dims, and it is what the H100 measurements were
made with (matmul attention fused by ORT). The dynamo exporter needs ``torch.export`` to prove
those shape branches for every size, which diffusers' UNets and transformers' mask code do not
survive without per-model dynamic-shape hints, and it is several times slower to export.

Each function writes ``path`` (``.onnx`` and, past 2 GB, the exporter's side files next to it) and
returns the :class:`ComponentSpec` describing the graph. Clean-up, fp16 and validation follow in
``sdrt.export.pipeline``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from .matmul_attention import install_matmul_attention
from .specs import ComponentSpec, TensorSpec, random_inputs
from .wrappers import (
    TextEncoderWrapper,
    UncondUNetWrapper,
    UNetWrapper,
    VaeDecoderWrapper,
    VaeEncoderWrapper,
)

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
Range = tuple[int, int]


def _trace_values(dims: dict[str, Range], trace: dict[str, int] | None) -> dict[str, int]:
    trace = dict(trace or {})
    return {d: trace.get(d, hi) for d, (lo, hi) in dims.items()}


def _finish(spec: ComponentSpec, static: bool) -> ComponentSpec:
    return spec.frozen(spec.trace) if static else spec


def _export(module: nn.Module, spec: ComponentSpec, path: Path, *, opset: int, device: str) -> ComponentSpec:
    """Trace ``module`` at ``spec.trace`` sizes and write the graph to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.to(device).eval()
    feeds = random_inputs(spec, spec.trace, seed=1)
    args = tuple(torch.from_numpy(feeds[name]).to(device) for name in spec.inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape branches: expected, see module doc
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_axes=spec.dynamic_axes(),
            opset_version=opset,
            do_constant_folding=True,
        )
    log.debug("%s: traced at %s into %s", spec.name, spec.trace, path)
    return spec


def text_encoder_spec(
    config,
    *,
    name: str,
    batch: Range,
    penultimate: bool,
    projection: bool,
    trace: dict[str, int] | None = None,
) -> ComponentSpec:
    seq = int(config.max_position_embeddings)
    hidden = int(config.hidden_size)
    outputs = {"last_hidden_state": TensorSpec("float32", ("batch", seq, hidden))}
    if penultimate:
        outputs["penultimate_hidden_state"] = TensorSpec("float32", ("batch", seq, hidden))
    if projection:
        outputs["text_embeds"] = TensorSpec("float32", ("batch", int(config.projection_dim)))
    dims = {"batch": batch}
    extra = {
        "vocab_size": int(config.vocab_size),
        "eos_token_id": int(config.eos_token_id),
        "bos_token_id": int(config.bos_token_id),
    }
    return ComponentSpec(
        name=name,
        component_class="",
        inputs={"input_ids": TensorSpec("int32", ("batch", seq))},
        outputs=outputs,
        dims=dims,
        trace=_trace_values(dims, trace),
        extra=extra,
    )


def export_text_encoder(
    model: nn.Module,
    path: Path,
    *,
    batch: Range = (1, 8),
    penultimate: bool = False,
    static: bool = False,
    trace: dict[str, int] | None = None,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
    name: str = "text_encoder",
) -> ComponentSpec:
    """CLIPTextModel -> ``input_ids`` int32 [B,77] -> ``last_hidden_state`` (+ penultimate for SDXL)."""
    install_matmul_attention(model)
    projection = hasattr(model, "text_projection")
    spec = text_encoder_spec(
        model.config, name=name, batch=batch, penultimate=penultimate, projection=projection, trace=trace
    )
    spec.component_class = type(model).__name__
    spec = _finish(spec, static)
    wrapper = TextEncoderWrapper(model, penultimate=penultimate, projection=projection)
    return _export(wrapper, spec, path, opset=opset, device=device)


def export_text_encoder_2(
    model: nn.Module,
    path: Path,
    *,
    batch: Range = (1, 8),
    static: bool = False,
    trace: dict[str, int] | None = None,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
) -> ComponentSpec:
    """SDXL's CLIPTextModelWithProjection -> last, penultimate hidden states and pooled ``text_embeds``."""
    return export_text_encoder(
        model,
        path,
        batch=batch,
        penultimate=True,
        static=static,
        trace=trace,
        opset=opset,
        device=device,
        name="text_encoder_2",
    )


def unet_spec(
    config,
    *,
    batch: Range,
    latent_height: Range,
    latent_width: Range,
    text_length: int = 77,
    trace: dict[str, int] | None = None,
) -> ComponentSpec:
    text_time = config.get("addition_embed_type") == "text_time"
    latent = ("batch", int(config["in_channels"]), "latent_height", "latent_width")
    inputs = {
        "sample": TensorSpec("float32", latent),
        "timestep": TensorSpec("float32", ("batch",)),
        "encoder_hidden_states": TensorSpec(
            "float32", ("batch", text_length, int(config["cross_attention_dim"]))
        ),
    }
    if text_time:
        pooled = int(config["projection_class_embeddings_input_dim"]) - 6 * int(
            config["addition_time_embed_dim"]
        )
        inputs["text_embeds"] = TensorSpec("float32", ("batch", pooled))
        inputs["time_ids"] = TensorSpec("float32", ("batch", 6))
    out = ("batch", int(config["out_channels"]), "latent_height", "latent_width")
    dims = {"batch": batch, "latent_height": latent_height, "latent_width": latent_width}
    return ComponentSpec(
        name="unet",
        component_class="UNet2DConditionModel",
        inputs=inputs,
        outputs={"noise_pred": TensorSpec("float32", out)},
        dims=dims,
        trace=_trace_values(dims, trace),
    )


def export_unet(
    unet: nn.Module,
    path: Path,
    *,
    batch: Range = (1, 8),
    latent_height: Range = (32, 96),
    latent_width: Range = (32, 96),
    text_length: int = 77,
    static: bool = False,
    trace: dict[str, int] | None = None,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
) -> ComponentSpec:
    """UNet2DConditionModel (SD 1.x/2.x, SDXL text_time, 9-channel inpainting) -> ``noise_pred``."""
    install_matmul_attention(unet)
    spec = unet_spec(
        unet.config,
        batch=batch,
        latent_height=latent_height,
        latent_width=latent_width,
        text_length=text_length,
        trace=trace,
    )
    spec = _finish(spec, static)
    wrapper = UNetWrapper(unet, text_time="text_embeds" in spec.inputs)
    return _export(wrapper, spec, path, opset=opset, device=device)


def uncond_unet_spec(
    config, *, batch: Range, height: Range, width: Range, trace: dict[str, int] | None = None
) -> ComponentSpec:
    dims = {"batch": batch, "height": height, "width": width}
    return ComponentSpec(
        name="unet",
        component_class="UNet2DModel",
        inputs={
            "sample": TensorSpec("float32", ("batch", int(config["in_channels"]), "height", "width")),
            "timestep": TensorSpec("float32", ("batch",)),
        },
        outputs={
            "noise_pred": TensorSpec("float32", ("batch", int(config["out_channels"]), "height", "width"))
        },
        dims=dims,
        trace=_trace_values(dims, trace),
    )


def export_uncond_unet(
    unet: nn.Module,
    path: Path,
    *,
    batch: Range = (1, 8),
    height: Range = (32, 256),
    width: Range = (32, 256),
    static: bool = False,
    trace: dict[str, int] | None = None,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
) -> ComponentSpec:
    """UNet2DModel (unconditional DDPM models) -> ``noise_pred``."""
    install_matmul_attention(unet)
    spec = _finish(
        uncond_unet_spec(unet.config, batch=batch, height=height, width=width, trace=trace), static
    )
    return _export(UncondUNetWrapper(unet), spec, path, opset=opset, device=device)


def _vae_scale(config) -> int:
    return 2 ** (len(config["block_out_channels"]) - 1)


def vae_encoder_spec(
    config, *, batch: Range, height: Range, width: Range, trace: dict[str, int] | None = None
) -> ComponentSpec:
    scale = _vae_scale(config)
    lc = int(config["latent_channels"])
    dims = {
        "batch": batch,
        "height": height,
        "width": width,
        "latent_height": (height[0] // scale, height[1] // scale),
        "latent_width": (width[0] // scale, width[1] // scale),
    }
    trace_values = _trace_values(dims, trace)
    trace_values["latent_height"] = trace_values["height"] // scale
    trace_values["latent_width"] = trace_values["width"] // scale
    return ComponentSpec(
        name="vae_encoder",
        component_class="AutoencoderKL",
        inputs={"image": TensorSpec("float32", ("batch", int(config["in_channels"]), "height", "width"))},
        outputs={"moments": TensorSpec("float32", ("batch", 2 * lc, "latent_height", "latent_width"))},
        dims=dims,
        trace=trace_values,
    )


def export_vae_encoder(
    vae: nn.Module,
    path: Path,
    *,
    batch: Range = (1, 4),
    height: Range = (256, 768),
    width: Range = (256, 768),
    static: bool = False,
    trace: dict[str, int] | None = None,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
) -> ComponentSpec:
    """AutoencoderKL encoder: ``image`` [-1,1] -> ``moments`` (mean, logvar)."""
    install_matmul_attention(vae)
    spec = _finish(vae_encoder_spec(vae.config, batch=batch, height=height, width=width, trace=trace), static)
    return _export(VaeEncoderWrapper(vae), spec, path, opset=opset, device=device)


def vae_decoder_spec(
    config, *, batch: Range, latent_height: Range, latent_width: Range, trace: dict[str, int] | None = None
) -> ComponentSpec:
    scale = _vae_scale(config)
    lc = int(config["latent_channels"])
    dims = {
        "batch": batch,
        "latent_height": latent_height,
        "latent_width": latent_width,
        "height": (latent_height[0] * scale, latent_height[1] * scale),
        "width": (latent_width[0] * scale, latent_width[1] * scale),
    }
    trace_values = _trace_values(dims, trace)
    trace_values["height"] = trace_values["latent_height"] * scale
    trace_values["width"] = trace_values["latent_width"] * scale
    return ComponentSpec(
        name="vae_decoder",
        component_class="AutoencoderKL",
        inputs={"latent": TensorSpec("float32", ("batch", lc, "latent_height", "latent_width"))},
        outputs={"image": TensorSpec("float32", ("batch", int(config["out_channels"]), "height", "width"))},
        dims=dims,
        trace=trace_values,
    )


def export_vae_decoder(
    vae: nn.Module,
    path: Path,
    *,
    batch: Range = (1, 4),
    latent_height: Range = (32, 96),
    latent_width: Range = (32, 96),
    static: bool = False,
    trace: dict[str, int] | None = None,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
) -> ComponentSpec:
    """AutoencoderKL decoder: ``latent`` (already divided by the scaling factor) -> ``image``."""
    install_matmul_attention(vae)
    spec = vae_decoder_spec(
        vae.config, batch=batch, latent_height=latent_height, latent_width=latent_width, trace=trace
    )
    spec = _finish(spec, static)
    return _export(VaeDecoderWrapper(vae), spec, path, opset=opset, device=device)


def torch_module_for(name: str, module: nn.Module, spec: ComponentSpec) -> nn.Module:
    """The wrapper the component was exported through (for validation against torch)."""
    if name in ("text_encoder", "text_encoder_2"):
        return TextEncoderWrapper(
            module,
            penultimate="penultimate_hidden_state" in spec.outputs,
            projection="text_embeds" in spec.outputs,
        )
    if name == "unet":
        if spec.component_class == "UNet2DModel":
            return UncondUNetWrapper(module)
        return UNetWrapper(module, text_time="text_embeds" in spec.inputs)
    if name == "vae_encoder":
        return VaeEncoderWrapper(module)
    if name == "vae_decoder":
        return VaeDecoderWrapper(module)
    raise KeyError(name)
