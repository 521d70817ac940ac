"""Latency benchmark of a bundle's pipeline (``sdrt bench``), optionally beside diffusers on the same weights.

Times whole generations (prompt encoding, the denoising loop, VAE decode, to host arrays) after warm-up
runs, and the UNet alone at the guidance batch. GPU work is synchronized before each clock read.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _synchronize(xp: Any) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def _timings(run: Callable[[], Any], runs: int, warmup: int, sync: Callable[[], None]) -> dict[str, float]:
    for _ in range(warmup):
        run()
    sync()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        sync()
        seconds.append(time.perf_counter() - start)
    return {
        "mean_s": statistics.fmean(seconds),
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "runs": runs,
    }


def bench_sdrt(
    bundle: str | os.PathLike[str],
    *,
    provider: str = "auto",
    prompt: str = "a photo of an astronaut riding a horse",
    steps: int = 30,
    runs: int = 3,
    warmup: int = 1,
    height: int | None = None,
    width: int | None = None,
) -> dict[str, Any]:
    """Latency of sdrt's pipeline on ``bundle`` (seconds per generation, and per UNet call)."""
    from .ddpm import DDPMPipeline
    from .pipeline_base import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(bundle, provider=provider)
    pipe.set_progress_bar_config(disable=True)
    xp = pipe.xp
    if isinstance(pipe, DDPMPipeline):

        def generate() -> Any:
            return pipe(num_inference_steps=steps, generator=0, output_type="np")

        unet_feeds: dict[str, Any] = {}
    else:
        height = height or pipe.default_size()[0]
        width = width or pipe.default_size()[1]

        def generate() -> Any:
            return pipe(
                prompt, height=height, width=width, num_inference_steps=steps, generator=0, output_type="np"
            )

        unet_feeds = {"height": height, "width": width}
    result: dict[str, Any] = {
        "library": "sdrt",
        "provider": pipe.provider,
        "model_type": pipe.bundle.model_type,
        "steps": steps,
        "generate": _timings(generate, runs, warmup, lambda: _synchronize(xp)),
    }
    result["unet"] = _timings(_unet_call(pipe, **unet_feeds), max(runs, 5), warmup, lambda: _synchronize(xp))
    return result


def _unet_call(pipe: Any, height: int | None = None, width: int | None = None) -> Callable[[], Any]:
    """One UNet evaluation at the pipeline's usual batch (2 with guidance) and size, on fixed inputs."""
    xp = pipe.xp
    inputs = pipe.unet.record.get("inputs", {})
    channels = pipe.unet.config.in_channels
    if height is None:
        size = pipe.unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        batch = 1
    else:
        h, w = height // pipe.vae_scale_factor, width // pipe.vae_scale_factor
        batch = 2
    sample = xp.zeros((batch, channels, h, w), dtype=np.float32)
    kwargs: dict[str, Any] = {}
    for name in ("encoder_hidden_states", "text_embeds", "time_ids"):
        if name in inputs:
            shape = [batch if isinstance(d, str) else int(d) for d in inputs[name]["shape"]]
            kwargs[name] = xp.zeros(shape, dtype=np.float32)
    encoder_hidden_states = kwargs.pop("encoder_hidden_states", None)
    return lambda: pipe.unet(sample, 500.0, encoder_hidden_states, **kwargs)


def bench_diffusers(
    model_dir: str | os.PathLike[str],
    *,
    device: str = "cpu",
    fp16: bool = False,
    prompt: str = "a photo of an astronaut riding a horse",
    steps: int = 30,
    runs: int = 3,
    warmup: int = 1,
    height: int | None = None,
    width: int | None = None,
) -> dict[str, Any]:
    """The same generation with diffusers (needs torch and diffusers: the [export] extra)."""
    import torch
    from diffusers import DDPMPipeline, DiffusionPipeline

    dtype = torch.float16 if fp16 else torch.float32
    pipe = DiffusionPipeline.from_pretrained(model_dir, torch_dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    if isinstance(pipe, DDPMPipeline):

        def generate() -> Any:
            return pipe(num_inference_steps=steps, output_type="np")
    else:

        def generate() -> Any:
            return pipe(prompt, height=height, width=width, num_inference_steps=steps, output_type="np")

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        timings = _timings(generate, runs, warmup, sync)
    return {
        "library": "diffusers",
        "device": device,
        "dtype": str(dtype),
        "steps": steps,
        "generate": timings,
    }
