"""The two pipelines (sdrt's and diffusers'), each loaded once onto the Setup, and one image from each."""

from __future__ import annotations

from typing import Any

import numpy as np

from .shared import Setup

PROMPT = "a photo of a cat"


def load_sdrt(s: Setup) -> Any:
    if s.sdrt is None:
        from sdrt.runtime import DiffusionPipeline

        s.sdrt = DiffusionPipeline.from_pretrained(s.bundle, provider=s.provider)
        s.sdrt.set_progress_bar_config(disable=True)
    return s.sdrt


def load_diffusers(s: Setup) -> Any:
    if s.diffusers is None:
        from diffusers import StableDiffusionPipeline

        from sdrt.export.diffusers_reference import pipeline_from_pretrained

        pipe = pipeline_from_pretrained(
            StableDiffusionPipeline,
            s.model_dir,
            s.torch_dtype,
            safety_checker=None,
            requires_safety_checker=False,
        )
        s.diffusers = pipe.to(s.torch_device)
        s.diffusers.set_progress_bar_config(disable=True)
    return s.diffusers


def sdrt_image(s: Setup, steps: int) -> np.ndarray:
    pipe = load_sdrt(s)
    return np.asarray(pipe(PROMPT, num_inference_steps=steps, latents=s.latents(), output_type="np").images)


def diffusers_image(s: Setup, steps: int) -> np.ndarray:
    import torch

    pipe = load_diffusers(s)
    latents = torch.from_numpy(s.latents()).to(s.torch_device, s.torch_dtype)
    with torch.inference_mode():
        images = pipe(PROMPT, num_inference_steps=steps, latents=latents, output_type="np").images
    return np.asarray(images, dtype=np.float32)
