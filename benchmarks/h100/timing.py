"""The timing stage: UNet, VAE decoder, text encoder and whole-image times, sdrt against diffusers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .measures import median_ms, per_call_ms
from .pipelines import diffusers_image, load_diffusers, load_sdrt, sdrt_image
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


def stage_timing(s: Setup) -> dict[str, Any]:
    import torch

    rows: dict[str, dict[str, Any]] = {"sdrt": {}, "sdrt (UNet CUDA graph)": {}, "diffusers eager": {}}
    pipe = load_sdrt(s)
    feeds = _sdrt_feeds(s)
    warm = 2 if s.dry else 5
    sdrt = rows["sdrt"]
    sdrt["unet_ms"] = per_call_ms(
        lambda: pipe.unet.engine.run(feeds["unet"]), s.sync_sdrt, warmup=warm, iters=s.iters
    )
    sdrt["vae_ms"] = per_call_ms(
        lambda: pipe.vae.decoder.engine.run(feeds["vae"]),
        s.sync_sdrt,
        warmup=warm,
        iters=max(3, s.iters // 3),
    )
    sdrt["text_ms"] = per_call_ms(
        lambda: pipe.text_encoder.engine.run(feeds["text"]), s.sync_sdrt, warmup=warm, iters=s.iters
    )
    repeats = 2 if s.dry else 3
    sdrt["image_ms"] = median_ms(lambda: sdrt_image(s, s.steps), s.sync_sdrt, repeats=repeats)

    graph_row = rows["sdrt (UNet CUDA graph)"]
    if s.dry:
        graph_row["status"] = "skipped: needs the CUDA provider"
    else:
        from sdrt.runtime.engines.ort.engine import OrtEngine

        record = pipe.bundle.components["unet"]["ort"]
        plain = pipe.unet.engine
        try:
            graph = OrtEngine(
                pipe.bundle.path / record["file"], provider="cuda", name="unet", cuda_graph=True
            )
            graph_row["unet_ms"] = per_call_ms(
                lambda: graph.run(feeds["unet"]), s.sync_sdrt, warmup=warm, iters=s.iters
            )
            pipe.unet.engine = graph
            graph_row["image_ms"] = median_ms(lambda: sdrt_image(s, s.steps), s.sync_sdrt, repeats=repeats)
        except Exception as err:
            graph_row["status"] = f"error: {type(err).__name__}: {err}"
        finally:
            pipe.unet.engine = plain

    dpipe = load_diffusers(s)
    dev, dtype = s.torch_device, s.torch_dtype
    unet_in = {k: torch.from_numpy(np.asarray(_host(v))).to(dev) for k, v in feeds["unet"].items()}
    sample, hidden = unet_in["sample"].to(dtype), unet_in["encoder_hidden_states"].to(dtype)
    # the call exactly as StableDiffusionPipeline makes it (a compiled UNet is not recompiled for it)
    timestep = torch.tensor(999, device=dev)
    unet_kwargs = {"timestep_cond": None, "cross_attention_kwargs": None, "added_cond_kwargs": None}
    unet_kwargs["return_dict"] = False
    latent = torch.from_numpy(np.asarray(_host(feeds["vae"]["latent"]))).to(dev, dtype)
    ids = torch.from_numpy(np.asarray(_host(feeds["text"]["input_ids"])).astype(np.int64)).to(dev)

    def diffusers_row(row: dict[str, Any], unet: Any) -> None:
        with torch.inference_mode():
            row["unet_ms"] = per_call_ms(
                lambda: unet(sample, timestep, encoder_hidden_states=hidden, **unet_kwargs),
                s.sync_torch,
                warmup=warm,
                iters=s.iters,
            )
            row["vae_ms"] = per_call_ms(
                lambda: dpipe.vae.decode(latent), s.sync_torch, warmup=warm, iters=max(3, s.iters // 3)
            )
            row["text_ms"] = per_call_ms(
                lambda: dpipe.text_encoder(ids), s.sync_torch, warmup=warm, iters=s.iters
            )
        row["image_ms"] = median_ms(lambda: diffusers_image(s, s.steps), s.sync_torch, repeats=repeats)

    diffusers_row(rows["diffusers eager"], dpipe.unet)
    if s.compile:
        compiled_row: dict[str, Any] = {}
        rows["diffusers torch.compile (UNet)"] = compiled_row
        eager_unet = dpipe.unet
        started = time.perf_counter()
        dpipe.unet = torch.compile(eager_unet, backend="eager") if s.dry else torch.compile(eager_unet)
        with torch.inference_mode():
            dpipe.unet(sample, timestep, encoder_hidden_states=hidden, **unet_kwargs)
        s.sync_torch()
        compiled_row["compile_s"] = round(time.perf_counter() - started, 1)
        try:
            diffusers_row(compiled_row, dpipe.unet)
        finally:
            dpipe.unet = eager_unet
    return {"rows": rows, "steps": s.steps, "size": s.size, "iters": s.iters}


def _host(array: Any) -> Any:
    return array.get() if hasattr(array, "get") else array
