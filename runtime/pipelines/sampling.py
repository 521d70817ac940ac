"""``Sampling``: the few ways diffusers' text-guided pipelines differ in how they sample, as data.

diffusers' Stable Diffusion pipelines guide with a [negative, positive] batch, cut the schedule for
``strength`` themselves and decode the final latents; its latent consistency pipelines
(``LatentConsistencyModelPipeline`` and its img2img) guide only through the UNet's guidance embedding, hand
``original_inference_steps`` and ``strength`` to ``LCMScheduler.set_timesteps`` and decode the last step's
``denoised`` sample. A pipeline class names its :class:`Sampling`; ``guided.TextGuidedPipeline`` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .timesteps import cut_at_denoising_end, retrieve_timesteps, start_timesteps, strength_timesteps


@dataclass(frozen=True)
class Sampling:
    """How a pipeline guides, schedules and decodes (the defaults: diffusers' Stable Diffusion pipelines)."""

    guidance_batch: bool = True  # classifier-free guidance ([negative, positive]) when guidance_scale > 1
    schedule_arguments: tuple[
        str, ...
    ] = ()  # call arguments handed to scheduler.set_timesteps (when not None)
    strength_in_schedule: bool = False  # strength handed to set_timesteps rather than cutting the schedule
    decoded: str = "latents"  # the loop state entry the VAE decodes at the end

    def timesteps(
        self,
        scheduler: Any,
        arguments: Mapping[str, Any],
        strength: float | None,
        denoising: tuple[float | None, float | None] = (None, None),
    ) -> tuple[Any, int]:
        """The call's timesteps and step count (diffusers' ``retrieve_timesteps``, then ``get_timesteps``);
        ``denoising``: SDXL's (``denoising_start``, ``denoising_end``), the fractions of the training schedule
        a refiner starts at (instead of ``strength``) and a base stops at."""
        options = {k: arguments[k] for k in self.schedule_arguments if arguments.get(k) is not None}
        if strength is not None and self.strength_in_schedule:
            options["strength"] = strength
        timesteps, steps = retrieve_timesteps(
            scheduler,
            arguments["num_inference_steps"],
            arguments.get("timesteps"),
            arguments.get("sigmas"),
            **options,
        )
        start, end = denoising
        if start is not None and 0 < start < 1:
            timesteps, steps = start_timesteps(scheduler, start)
        elif strength is not None and not self.strength_in_schedule:
            timesteps, steps = strength_timesteps(scheduler, steps, strength)
        if end is not None and 0 < end < 1:
            timesteps = cut_at_denoising_end(scheduler, timesteps, end)
            steps = len(timesteps)
        return timesteps, steps


DIFFUSION = Sampling()
CONSISTENCY = Sampling(
    guidance_batch=False,
    schedule_arguments=("original_inference_steps",),
    strength_in_schedule=True,
    decoded="denoised",
)


def guidance_scale_embedding(w: Any, embedding_dim: int) -> np.ndarray:
    """diffusers' ``get_guidance_scale_embedding`` in NumPy: [len(w), embedding_dim] float32 sinusoids of
    ``w x 1000`` (the ``timestep_cond`` of UNets with ``time_cond_proj_dim``)."""
    w = np.asarray(w, dtype=np.float32).reshape(-1) * np.float32(1000.0)
    half = embedding_dim // 2
    scale = np.float32(np.log(np.float32(10000.0)) / np.float32(half - 1))
    frequencies = np.exp(np.arange(half, dtype=np.float32) * -scale)
    angles = w[:, None] * frequencies[None, :]
    emb = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if embedding_dim % 2 == 1:
        emb = np.pad(emb, ((0, 0), (0, 1)))
    return emb.astype(np.float32)
