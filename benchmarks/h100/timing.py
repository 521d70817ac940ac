"""The timing stage: UNet, VAE decoder, text encoder and whole-image times, sdrt against diffusers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .measures import median_ms, per_call_ms
from .pipelines import PROMPT, diffusers_image, load_diffusers, load_sdrt, sdrt_image
from .shared import Setup


def _sdrt_feeds(s: Setup) -> dict[str, Any]:
    xp = s.xp
    pipe = load_sdrt(s)
    lat = s.size // 8
    rng = np.random.default_rng(1)
    unet = {
        "sample": xp.asarray(rng.standard_normal((2, 4, lat, lat)).astype(np.float32)),
        "timestep": xp.asarray(np.full((2,), 999.0, np.float32)),
        "encoder_hidden_states": xp.asarray(
            rng.standard_normal((2, 77, pipe.unet.engine.inputs["encoder_hidden_states"].shape[2])).astype(
                np.float32
            )
        ),
    }
    vae = {"latent": xp.asarray(rng.standard_normal((1, 4, lat, lat)).astype(np.float32))}
    ids = {"input_ids": xp.asarray(np.arange(77, dtype=np.int32).reshape(1, 77) % 400)}
    return {"unet": unet, "vae": vae, "text": ids}


def _warmup_calls(s: Setup) -> int:
    return 2 if s.dry else 5


def _image_repeats(s: Setup) -> int:
    return 2 if s.dry else 3


def _time_sdrt(s: Setup, pipe: Any, feeds: dict[str, Any]) -> dict[str, Any]:
    """sdrt's UNet, VAE decoder and text encoder calls, and a whole image."""
    warm = _warmup_calls(s)
    row: dict[str, Any] = {}
    row["unet_ms"] = per_call_ms(
        lambda: pipe.unet.engine.run(feeds["unet"]), s.sync_sdrt, warmup=warm, iters=s.iters
    )
    row["vae_ms"] = per_call_ms(
        lambda: pipe.vae.decoder.engine.run(feeds["vae"]),
        s.sync_sdrt,
        warmup=warm,
        iters=max(3, s.iters // 3),
    )
    row["text_ms"] = per_call_ms(
        lambda: pipe.text_encoder.engine.run(feeds["text"]), s.sync_sdrt, warmup=warm, iters=s.iters
    )
    row["image_ms"] = median_ms(lambda: sdrt_image(s, s.steps), s.sync_sdrt, repeats=_image_repeats(s))
    row.update(_loop_overhead(s, pipe, row["unet_ms"]))
    return row


def _loop_overhead(s: Setup, pipe: Any, unet_ms: float) -> dict[str, Any]:
    """The denoising loop alone (prompt embeddings given, latents out: no text encoder, no VAE), and what
    each step costs beyond its UNet call: guidance, the scheduler step, the host's work."""
    embeds, negative = pipe.encode_prompt(PROMPT, 1, True)

    def loop() -> Any:
        return pipe(
            prompt_embeds=embeds,
            negative_prompt_embeds=negative,
            num_inference_steps=s.steps,
            latents=s.xp.asarray(s.latents()),
            output_type="latent",
        )

    loop_ms = median_ms(loop, s.sync_sdrt, repeats=_image_repeats(s))
    overhead = loop_ms / s.steps - unet_ms
    return {
        "loop_ms": loop_ms,
        "step_overhead_ms": overhead,
        "step_overhead_pct": 100 * overhead / unet_ms,
    }


def _time_sdrt_unet_cuda_graph(s: Setup, pipe: Any, feeds: dict[str, Any]) -> dict[str, Any]:
    """The UNet call and a whole image with the UNet's session replaying a CUDA graph (CUDA provider only)."""
    row: dict[str, Any] = {}
    if s.dry:
        row["status"] = "skipped: needs the CUDA provider"
        return row
    from sdrt.runtime.engines.ort.engine import OrtEngine

    record = pipe.bundle.components["unet"].ort
    plain = pipe.unet.engine
    try:
        graph = OrtEngine(pipe.bundle.path / record.file, provider="cuda", name="unet", cuda_graph=True)
        row["unet_ms"] = per_call_ms(
            lambda: graph.run(feeds["unet"]), s.sync_sdrt, warmup=_warmup_calls(s), iters=s.iters
        )
        pipe.unet.engine = graph
        row["image_ms"] = median_ms(lambda: sdrt_image(s, s.steps), s.sync_sdrt, repeats=_image_repeats(s))
        row.update(_loop_overhead(s, pipe, row["unet_ms"]))
    except Exception as err:
        row["status"] = f"error: {type(err).__name__}: {err}"
    finally:
        pipe.unet.engine = plain
    return row


@dataclass
class _TorchInputs:
    """The sdrt feeds as torch tensors, and the UNet call's other arguments."""

    sample: Any
    hidden: Any
    timestep: Any
    unet_kwargs: dict[str, Any]
    latent: Any
    ids: Any

    def call_unet(self, unet: Any) -> Any:
        return unet(self.sample, self.timestep, encoder_hidden_states=self.hidden, **self.unet_kwargs)


def _torch_inputs(s: Setup, feeds: dict[str, Any]) -> _TorchInputs:
    import torch

    dev, dtype = s.torch_device, s.torch_dtype
    unet_in = {k: torch.from_numpy(np.asarray(_host(v))).to(dev) for k, v in feeds["unet"].items()}
    sample, hidden = unet_in["sample"].to(dtype), unet_in["encoder_hidden_states"].to(dtype)
    # the call exactly as StableDiffusionPipeline makes it (a compiled UNet is not recompiled for it)
    timestep = torch.tensor(999, device=dev)
    unet_kwargs = {"timestep_cond": None, "cross_attention_kwargs": None, "added_cond_kwargs": None}
    unet_kwargs["return_dict"] = False
    latent = torch.from_numpy(np.asarray(_host(feeds["vae"]["latent"]))).to(dev, dtype)
    ids = torch.from_numpy(np.asarray(_host(feeds["text"]["input_ids"])).astype(np.int64)).to(dev)
    return _TorchInputs(sample, hidden, timestep, unet_kwargs, latent, ids)


def _time_diffusers(s: Setup, dpipe: Any, unet: Any, inputs: _TorchInputs) -> dict[str, Any]:
    """diffusers' UNet (``unet``), VAE decoder and text encoder calls, and a whole image."""
    import torch

    warm = _warmup_calls(s)
    row: dict[str, Any] = {}
    with torch.inference_mode():
        row["unet_ms"] = per_call_ms(lambda: inputs.call_unet(unet), s.sync_torch, warmup=warm, iters=s.iters)
        row["vae_ms"] = per_call_ms(
            lambda: dpipe.vae.decode(inputs.latent), s.sync_torch, warmup=warm, iters=max(3, s.iters // 3)
        )
        row["text_ms"] = per_call_ms(
            lambda: dpipe.text_encoder(inputs.ids), s.sync_torch, warmup=warm, iters=s.iters
        )
    row["image_ms"] = median_ms(lambda: diffusers_image(s, s.steps), s.sync_torch, repeats=_image_repeats(s))
    return row


def _time_diffusers_compiled_unet(s: Setup, dpipe: Any, inputs: _TorchInputs) -> dict[str, Any]:
    """The compile time (to the first UNet call's end), then diffusers' times with the compiled UNet."""
    import torch

    eager_unet = dpipe.unet
    started = time.perf_counter()
    dpipe.unet = torch.compile(eager_unet, backend="eager") if s.dry else torch.compile(eager_unet)
    with torch.inference_mode():
        inputs.call_unet(dpipe.unet)
    s.sync_torch()
    row: dict[str, Any] = {"compile_s": round(time.perf_counter() - started, 1)}
    try:
        row.update(_time_diffusers(s, dpipe, dpipe.unet, inputs))
    finally:
        dpipe.unet = eager_unet
    return row


def stage_timing(s: Setup) -> dict[str, Any]:
    import torch  # noqa: F401  (the stage needs torch: fail before timing anything without it)

    rows: dict[str, dict[str, Any]] = {}
    pipe = load_sdrt(s)
    feeds = _sdrt_feeds(s)
    rows["sdrt"] = _time_sdrt(s, pipe, feeds)
    rows["sdrt (UNet CUDA graph)"] = _time_sdrt_unet_cuda_graph(s, pipe, feeds)
    dpipe = load_diffusers(s)
    inputs = _torch_inputs(s, feeds)
    rows["diffusers eager"] = _time_diffusers(s, dpipe, dpipe.unet, inputs)
    if s.compile:
        rows["diffusers torch.compile (UNet)"] = _time_diffusers_compiled_unet(s, dpipe, inputs)
    return {"rows": rows, "steps": s.steps, "size": s.size, "iters": s.iters}


def _host(array: Any) -> Any:
    return array.get() if hasattr(array, "get") else array
