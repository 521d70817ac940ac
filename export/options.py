"""``BuildOptions``: everything a build is asked for, as one value.

``build-engine`` fills it from its command line (``cli/build_engine.py``: each field is the ``dest`` of one
argparse option) and ``export_pipeline`` reads it; the build's steps take the one value instead of a
keyword each. A new build option is one field here plus its argparse line. The values are checked where
they are used (``build.py``: backend, precision, device, opset; ``shapes.py``: sizes; ``prepare.py``:
the model's parts), so each message names the option at fault and the fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BuildOptions:
    """The options of one ``export_pipeline`` / ``build-engine`` run; the defaults are ``build-engine``'s
    (except ``precision``, whose command-line default depends on the backend and device)."""

    backend: str = "ort"
    """A backend of ``sdrt.runtime.backends`` by name or alias: ``"onnx"`` (graphs only), ``"ort"`` (plus
    ORT-optimized graphs for ``device``'s provider; ``"cpu"`` / ``"cuda"`` name one directly), ``"openvino"``
    (plus OpenVINO IR) or ``"tensorrt"`` (plus plans)."""
    precision: str = "fp32"
    """``"fp32"`` or ``"fp16"``; with ``backend="openvino"`` its inference precision ``"fp32"``, ``"bf16"``
    or ``"auto"`` (its ONNX graphs stay fp32)."""
    components: list[str] | None = None
    """Build only these components (others are kept if unchanged; ``controlnet``: every ControlNet)."""
    height: int | None = None
    """One image height in pixels (with ``width``): a single size instead of a range."""
    width: int | None = None
    """One image width in pixels."""
    min_size: int | None = None
    """Smallest height/width of a dynamic size range."""
    max_size: int | None = None
    """Largest height/width of a dynamic size range."""
    batch: int = 1
    """Smallest prompt batch."""
    max_batch: int | None = None
    """Largest prompt batch (default 4, or ``batch`` when ``static``)."""
    static: bool = False
    """Fixed shapes: one size, one batch."""
    device: str = "cpu"
    """``"cpu"`` or ``"cuda"``: the ONNX Runtime provider the ``ort`` graphs are built for (``"cuda"``:
    fused fp16/fp32 graphs, buildable without a GPU), and torch's export device where torch can use it."""
    export_device: str | None = None
    """Where torch traces and computes the validation references (default: ``device`` when torch can use
    it, else ``"cpu"``)."""
    validate: bool = True
    """Compare each exported graph with torch (the validation gate)."""
    force: bool = False
    """Rebuild every component, even one unchanged since the bundle being replaced."""
    vae_fp32: bool = False
    """Keep the VAE in fp32 in an fp16 build (SDXL's VAE overflows in fp16)."""
    clip_skip: int | None = None
    """The text encoders also return the hidden states diffusers' ``clip_skip`` takes (a pipeline call then
    passes that ``clip_skip``)."""
    prompt_chunks: int | None = None
    """The UNet takes prompt embeddings of 77 x 1..N tokens (A1111's long prompts, ``prompt_syntax="a1111"``);
    None or 1: a fixed 77, as diffusers' prompts."""
    deepcache: int | None = None
    """Also export the UNet split for step caching (DeepCache) at this branch (DeepCache's ``cache_branch_id``;
    0: the shallowest): ``unet_deepcache_full`` and ``unet_deepcache_shallow``, so pipelines take
    ``cache_interval``. None: not exported."""
    vae: str | Path | None = None
    """A diffusers ``AutoencoderKL`` or ``AutoencoderTiny`` folder (or a model folder with one, or a single
    ``.safetensors`` VAE) exported instead of the model's own, as diffusers' ``from_pretrained(..., vae=...)``."""
    preview_vae: str | Path | None = None
    """An ``AutoencoderTiny`` folder (TAESD, TAESDXL) exported beside the VAE as ``vae_preview_decoder``: cheap
    previews of the latents (``pipe.vae.decode_preview``)."""
    safety_checker: str | Path | None = None
    """A diffusers ``StableDiffusionSafetyChecker`` folder (with CLIP's ``preprocessor_config.json``) exported as
    the ``safety_checker`` component, in place of the model folder's own (SD 1.x/2.x and inpainting models)."""
    textual_inversions: list[str] | None = None
    """``FILE[:TOKEN]`` embeddings added as diffusers' ``load_textual_inversion``."""
    loras: list[str] | None = None
    """``FILE[:SCALE]`` LoRAs fused as diffusers' ``load_lora_weights``, ``set_adapters``, ``fuse_lora``."""
    controlnets: list[str] | None = None
    """``DIR[:NAME]`` ControlNetModel folders, each its own component (the UNet takes their residuals)."""
    ip_adapter: str | Path | None = None
    """An IP-Adapter ``.safetensors`` file (diffusers' ``load_ip_adapter`` layout) loaded into the UNet as diffusers
    loads it: the UNet takes the image tokens and a per-layer scale, the projection is ``image_projection``."""
    image_encoder: str | Path | None = None
    """The ``CLIPVisionModelWithProjection`` folder of ``ip_adapter``, exported as ``image_encoder``."""
    adapters: list[str] | None = None
    """``DIR[:NAME]`` T2IAdapter folders, each its own component (the UNet takes their feature maps)."""
    config: str | Path | None = None
    """With a single-file checkpoint: the diffusers folder of its model, or a configuration sdrt ships
    (``sd15``, ``sd2``, ``sd2-base``, ``sdxl``); default: the one diffusers infers."""
    allow_pickle: bool = False
    """Accept a ``.ckpt``/``.pt`` checkpoint: a pickle, which can run code when loaded."""
    opset: int = 17
    """The ONNX opset (17 or later)."""
    progress: bool = True
    """Show a progress bar."""
    trt_options: dict[str, Any] | None = None
    """With ``backend="tensorrt"``: the keyword options of ``sdrt.export.tensorrt.build`` (``trt_module``,
    ``target_compute``, ``optimization_level``, ``workspace_gb``, ``refittable``)."""


def build_options(options: BuildOptions | None = None, **keywords: Any) -> BuildOptions:
    """``options`` (default: all defaults) with the fields named in ``keywords`` replaced; an unknown
    keyword is a ``TypeError``, as for any call."""
    return dataclasses.replace(options or BuildOptions(), **keywords)
