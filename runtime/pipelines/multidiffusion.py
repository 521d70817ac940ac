"""MultiDiffusion (arXiv:2302.08113) as diffusers' ``StableDiffusionPanoramaPipeline`` runs it: the panorama's
latents cut into 64x64 windows every 8 latent pixels, each batch of windows denoised by a scheduler of its own,
the denoised windows averaged where they overlap; with ``circular_padding`` the windows wrap around the sides."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.errors import InputError

from . import decoding
from .guidance import rescale_noise_cfg

if TYPE_CHECKING:
    from .guided import GuidedCall, TextGuidedPipeline

View = tuple[int, int, int, int]  # h_start, h_end, w_start, w_end in latent pixels

WINDOW = 64  # diffusers' window size and stride, in latent pixels
STRIDE = 8


def get_views(
    panorama_height: int,
    panorama_width: int,
    window_size: int = WINDOW,
    stride: int = STRIDE,
    circular_padding: bool = False,
) -> list[View]:
    """diffusers' ``get_views``: the windows over a panorama of this size in pixels (one along a side shorter
    than the window)."""
    height, width = panorama_height / 8, panorama_width / 8
    rows = int((height - window_size) // stride + 1) if height > window_size else 1
    if circular_padding:
        columns = int(width // stride) if width > window_size else 1
    else:
        columns = int((width - window_size) // stride + 1) if width > window_size else 1
    views = []
    for i in range(rows * columns):
        h_start, w_start = (i // columns) * stride, (i % columns) * stride
        views.append((h_start, h_start + window_size, w_start, w_start + window_size))
    return views


def crop(latents: Any, view: View, circular: bool, xp: Any = np) -> Any:
    """The view's latents (wrapped around the right side with ``circular``)."""
    h_start, h_end, w_start, w_end = view
    width = latents.shape[3]
    if circular and w_end > width:
        right = latents[:, :, h_start:h_end, w_start:]
        return xp.concatenate([right, latents[:, :, h_start:h_end, : w_end - width]], axis=-1)
    return latents[:, :, h_start:h_end, w_start:w_end]


def check_panorama(
    pipe: TextGuidedPipeline, height: int, width: int, views: list[View], circular: bool, decoded: bool
) -> None:
    """The views the UNet denoises and the panorama the VAE decodes inside the engines' size range."""
    latent = np.empty((0, 0, height // 8, width // 8))
    sizes = {tuple(8 * n for n in crop(latent, view, circular).shape[2:]) for view in views}
    if decoded:
        sizes.add((height, width + (2 * STRIDE * 8 if circular else 0)))
    try:
        for view_height, view_width in sorted(sizes):
            decoding.check_size(pipe, view_height, view_width)
    except InputError as error:
        view = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        raise InputError(
            f"panorama {width}x{height} (width x height): the engines run {view} (the UNet's views, the VAE's "
            f"decode{' with circular padding' if circular else ''}); {error}"
        ) from None


class MultiDiffusion:
    """One MultiDiffusion step (``loop.denoise``'s ``step``): every batch of views predicted with guidance,
    stepped by its own copy of the call's scheduler, and the results averaged into the panorama's latents."""

    def __init__(
        self,
        pipe: TextGuidedPipeline,
        call: GuidedCall,
        views: list[View],
        view_batch_size: int,
        circular: bool,
    ) -> None:
        if view_batch_size < 1:
            raise InputError(f"`view_batch_size` must be at least 1, got {view_batch_size}")
        self.pipe, self.call, self.circular = pipe, call, circular
        self.batches = [views[i : i + view_batch_size] for i in range(0, len(views), view_batch_size)]
        scheduler = pipe.scheduler  # the call's, its timesteps set
        self.schedulers = [copy.deepcopy(scheduler) for _ in self.batches]

    def __call__(self, state: dict[str, Any], t: Any, step_kwargs: dict[str, Any]) -> Any:
        xp = self.pipe.xp
        latents = state["latents"]
        value, count = xp.zeros_like(latents), xp.zeros_like(latents)
        for views, scheduler in zip(self.batches, self.schedulers):
            crops = xp.concatenate([crop(latents, view, self.circular, xp) for view in views])
            noise_pred = self.predict(scheduler, crops, t, len(views), state)
            denoised = scheduler.step(noise_pred, t, crops, **step_kwargs).prev_sample
            for part, view in zip(xp.split(denoised, len(views)), views):
                self.add(value, count, part, view)
        return xp.where(count > 0, value / xp.maximum(count, 1), value)

    def predict(self, scheduler: Any, crops: Any, t: Any, views: int, state: dict[str, Any]) -> Any:
        """The guided noise of a batch of views, in diffusers' order ([view uncond, view text] per view)."""
        xp, guidance = self.pipe.xp, self.call.guidance
        model_input = xp.repeat(crops, 2, axis=0) if guidance.enabled else crops
        model_input = scheduler.scale_model_input(model_input, t)
        embeds = xp.concatenate([state["prompt_embeds"]] * views)
        added = {name: state[key] for name, key in self.call.unet_inputs.items()}
        noise_pred = self.pipe.unet(model_input, t, embeds, **added)
        if guidance.enabled:
            uncond, text = noise_pred[::2], noise_pred[1::2]
            noise_pred = uncond + guidance.scale * (text - uncond)
            if guidance.rescale > 0.0:
                noise_pred = rescale_noise_cfg(xp, noise_pred, text, guidance.rescale)
        return noise_pred

    def add(self, value: Any, count: Any, part: Any, view: View) -> None:
        h_start, h_end, w_start, w_end = view
        width = value.shape[3]
        if self.circular and w_end > width:
            value[:, :, h_start:h_end, w_start:] += part[:, :, :, : width - w_start]
            value[:, :, h_start:h_end, : w_end - width] += part[:, :, :, width - w_start :]
            count[:, :, h_start:h_end, w_start:] += 1
            count[:, :, h_start:h_end, : w_end - width] += 1
        else:
            value[:, :, h_start:h_end, w_start:w_end] += part
            count[:, :, h_start:h_end, w_start:w_end] += 1
