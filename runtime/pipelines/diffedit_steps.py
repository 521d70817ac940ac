"""DiffEdit's pieces, as diffusers' ``StableDiffusionDiffEditPipeline`` computes them: the mask from the
difference of two prompts' noise predictions, the inversion's timesteps and trajectory, and the masked
denoising that keeps the region outside the mask on the inverted trajectory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.images import ImageInput, preprocess_mask, to_host

from .arrays import to_xp
from .conditioners.base import Conditioner

if TYPE_CHECKING:
    from .guided import GuidedCall, TextGuidedPipeline


def check_mask_options(num_maps_per_mask: Any, mask_thresholding_ratio: Any, strength: Any) -> None:
    """``generate_mask``'s own options, refused as diffusers refuses them."""
    if isinstance(num_maps_per_mask, bool) or not isinstance(num_maps_per_mask, int) or num_maps_per_mask < 1:
        raise InputTypeError(f"`num_maps_per_mask` has to be a positive integer but is {num_maps_per_mask!r}")
    if mask_thresholding_ratio is None or not float(mask_thresholding_ratio) > 0:
        raise InputError(
            f"`mask_thresholding_ratio` has to be positive but is {mask_thresholding_ratio!r}; the default is 3.0"
        )
    if strength is None or not 0 <= float(strength) <= 1:
        raise InputError(f"`mask_encode_strength` must be in [0.0, 1.0], got {strength!r}")


def semantic_mask(
    xp: Any, noise_pred: Any, batch: int, guidance_scale: float | None, ratio: float
) -> np.ndarray:
    """The binary mask [batch, h, w] (int64, as diffusers returns it): where the target prompt's noise
    prediction differs from the source prompt's by more than half of ``ratio`` x their mean difference.
    ``noise_pred``: [source, target] predictions, each guided ([negative, positive]) unless
    ``guidance_scale`` is None."""
    if guidance_scale is not None:
        negative_source, source, negative_target, target = xp.split(noise_pred, 4)
        source = negative_source + guidance_scale * (source - negative_source)
        target = negative_target + guidance_scale * (target - negative_target)
    else:
        source, target = xp.split(noise_pred, 2)
    difference = xp.abs(target - source)
    guidance_map = difference.reshape(batch, -1, *difference.shape[-3:]).mean(axis=(1, 2))
    clamp_magnitude = guidance_map.mean() * ratio
    mask = xp.clip(guidance_map, 0, clamp_magnitude) / clamp_magnitude
    return to_host(xp.where(mask <= 0.5, 0, 1)).astype(np.int64)


def mask_output(mask: np.ndarray, output_type: str) -> Any:
    """``generate_mask``'s output: the NumPy mask ("np"), or one grayscale PIL image per mask ("pil")."""
    if output_type == "np":
        return mask
    if output_type == "pil":
        return [Image.fromarray((m * 255).astype(np.uint8), mode="L") for m in mask]
    raise InputError(f"generate_mask's output_type must be 'np' or 'pil', got {output_type!r}")


def inverse_timesteps(scheduler: Any, num_inference_steps: int, strength: float) -> tuple[Any, int]:
    """The head of the inverse scheduler's ascending timesteps that ``strength`` keeps (diffusers'
    ``get_inverse_timesteps``): the inversion stops where the edit will start denoising."""
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    if init_timestep < 1:
        raise InputError(
            f"inpaint_strength={strength} with num_inference_steps={num_inference_steps} leaves no inversion "
            "step; raise either of them"
        )
    timesteps = scheduler.timesteps if t_start == 0 else scheduler.timesteps[:-t_start]
    return timesteps, num_inference_steps - t_start


def diffedit_mask(mask_image: ImageInput, batch_size: int) -> np.ndarray:
    """The edit's mask [batch, 1, h, w] at latent size (``generate_mask``'s output, or any one-channel mask in
    [0, 1], binarized at 0.5), read as diffusers' DiffEdit reads it: HW, NHW (1HW: one mask), N1HW; PIL
    images in grayscale. One mask is repeated to the prompts' batch."""
    if mask_image is None:
        raise InputError(
            "`mask_image` input cannot be undefined. Use `generate_mask()` to compute `mask_image` from text prompts."
        )
    if isinstance(mask_image, Image.Image) or (
        isinstance(mask_image, list | tuple) and mask_image and isinstance(mask_image[0], Image.Image)
    ):
        mask = preprocess_mask(mask_image, scale_factor=1)
    else:
        items = mask_image if isinstance(mask_image, list | tuple) else [mask_image]
        arrays = [to_xp(np, item) for item in items]
        mask = np.stack(arrays) if arrays[0].ndim < 3 else np.concatenate(arrays)
        mask = mask[None, None] if mask.ndim == 2 else mask[:, None] if mask.ndim == 3 else mask
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise InputError(f"`mask_image` must have 1 channel, but has shape {tuple(mask.shape)} as NCHW")
    if mask.min() < 0 or mask.max() > 1:
        raise InputError("`mask_image` should be in [0, 1] range")
    if mask.shape[0] == 1 and batch_size > 1:
        mask = np.concatenate([mask] * batch_size)
    elif mask.shape[0] != batch_size:
        raise InputError(
            f"`mask_image` with batch size {mask.shape[0]} cannot be broadcasted to batch size {batch_size} "
            "inferred by prompt inputs"
        )
    return np.where(mask < 0.5, 0.0, 1.0).astype(np.float32)


class Trajectory(Conditioner):
    """Keeps the latents after every step (the inversion's output)."""

    def __init__(self) -> None:
        self.latents: list[Any] = []

    def after_step(self, i: int, t: Any, state: dict[str, Any]) -> None:
        self.latents.append(state["latents"].copy())


class InvertedTrajectory(Conditioner):
    """DiffEdit's edit: start from the inverted latents of the first timestep and, after every step, put the
    region outside ``mask`` back on the inverted trajectory."""

    def __init__(self, mask: np.ndarray, image_latents: Any) -> None:
        if image_latents is None:
            raise InputError(
                "`image_latents` input cannot be undefined. Use `invert()` to compute `image_latents` from input "
                "images."
            )
        self.mask, self.image_latents = mask, image_latents

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        xp, per_prompt = pipe.xp, call.num_images_per_prompt
        steps = len(call.timesteps)
        shape = (pipe.vae.config.latent_channels, *self.mask.shape[-2:])
        trajectory = trajectory_latents(xp, self.image_latents, call.embeds.batch // per_prompt, steps, shape)
        self.trajectory = xp.repeat(trajectory, per_prompt, axis=1)
        self.xp_mask = to_xp(xp, np.concatenate([self.mask] * per_prompt))
        call.latents = self.trajectory[0].copy()

    def after_step(self, i: int, t: Any, state: dict[str, Any]) -> None:
        state["latents"] = state["latents"] * self.xp_mask + self.trajectory[i] * (1 - self.xp_mask)


def trajectory_latents(xp: Any, image_latents: Any, batch: int, steps: int, shape: tuple[int, ...]) -> Any:
    """``invert()``'s latents ([batch, steps, C, h, w], or [batch x steps, C, h, w], or a list of them) checked
    against the edit's batch, step count and latent size, as [steps, batch, C, h, w]."""
    if isinstance(image_latents, list | tuple):
        latents = xp.concatenate([to_xp(xp, item) for item in image_latents])
    else:
        latents = to_xp(xp, image_latents)
    if latents.ndim not in (4, 5) or tuple(latents.shape[-3:]) != shape:
        raise InputError(
            f"Each latent image in `image_latents` must have shape {shape} (the latents' channels and the "
            f"mask's size), but `image_latents` has shape {tuple(latents.shape)}; pass invert()'s latents of "
            "the image the mask was made from"
        )
    if latents.ndim == 4:
        if latents.shape[0] != batch * steps:
            raise InputError(
                f"`image_latents` holds {latents.shape[0]} latent images, expected {batch} x {steps} timesteps"
            )
        latents = latents.reshape(batch, steps, *shape)
    if tuple(latents.shape[:2]) != (batch, steps):
        raise InputError(
            f"`image_latents` must have batch size {batch} with latent images from {steps} timesteps, but has "
            f"batch size {latents.shape[0]} with latent images from {latents.shape[1]} timesteps; invert() "
            "with the same num_inference_steps and inpaint_strength"
        )
    return latents.transpose(1, 0, 2, 3, 4)
