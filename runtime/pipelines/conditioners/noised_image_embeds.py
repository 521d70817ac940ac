"""``NoisedImageEmbeds``: Stable unCLIP's image conditioning, as diffusers' ``noise_image_embeddings``: the
image's CLIP embedding normalised (``ImageNormalizer``: the model's mean and std), noised to ``noise_level`` by
the image-noising scheduler's ``add_noise``, un-normalised, with the sinusoidal embedding of ``noise_level``
appended; the UNet's ``class_labels`` (zeros for the unconditional half under guidance)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdrt.runtime.errors import BundleError
from sdrt.runtime.tensor_files import read_safetensors

from ..arrays import repeat_rows
from .base import Conditioner

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class ImageNormalizer:
    """diffusers' ``StableUnCLIPImageNormalizer``'s weights: embeddings are scaled to (x - mean) / std to be
    noised, then back."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, np.float32).reshape(1, -1)
        self.std = np.asarray(std, np.float32).reshape(1, -1)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ImageNormalizer:
        """The ``mean`` and ``std`` of the normaliser's safetensors file in ``folder``."""
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise BundleError(
                f"{folder} holds no safetensors weights of the image normaliser; rebuild the bundle with build-engine "
                "from a model folder whose image_normalizer/ has diffusion_pytorch_model.safetensors"
            )
        weights = read_safetensors(files[0])
        return cls(weights["mean"], weights["std"])


def timestep_embedding(timesteps: np.ndarray, dim: int) -> np.ndarray:
    """diffusers' ``get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0)``: [cos, sin]."""
    half = dim // 2
    exponent = -math.log(10000) * np.arange(half, dtype=np.float32) / np.float32(half)
    angles = np.asarray(timesteps, np.float32)[:, None] * np.exp(exponent)[None, :]
    embedding = np.concatenate([np.cos(angles), np.sin(angles)], axis=-1)
    if dim % 2:
        embedding = np.pad(embedding, ((0, 0), (0, 1)))
    return embedding.astype(np.float32)


class NoisedImageEmbeds(Conditioner):
    """``embeds`` (images x D, the encoder's ``image_embeds`` or the caller's), each repeated ``repeat_by``
    times, noised to ``noise_level`` by ``noising`` (a scheduler's ``add_noise``) between ``normalizer``'s scale
    and unscale; drawn before the starting latents, as diffusers draws them."""

    def __init__(
        self, embeds: Any, noise_level: int, repeat_by: int, normalizer: ImageNormalizer, noising: Any
    ) -> None:
        self.embeds, self.noise_level, self.repeat_by = embeds, noise_level, repeat_by
        self.normalizer, self.noising = normalizer, noising

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        xp, embeds = pipe.xp, pipe.to_xp(self.embeds)
        count = int(embeds.shape[0])
        noise = call.noise.take(count).randn(embeds.shape)
        levels = np.full((count,), self.noise_level, dtype=np.int64)
        mean, std = pipe.to_xp(self.normalizer.mean), pipe.to_xp(self.normalizer.std)
        noised = self.noising.add_noise((embeds - mean) * 1.0 / std, noise, levels)
        noised = noised * std + mean
        level = pipe.to_xp(timestep_embedding(levels, int(embeds.shape[-1])))
        labels = repeat_rows(xp, xp.concatenate([noised, level], axis=1), self.repeat_by)
        if call.guidance.enabled:
            labels = xp.concatenate([xp.zeros_like(labels), labels])
        call.state["image_embeds"] = labels.astype(xp.float32)
        call.unet_inputs["class_labels"] = "image_embeds"
