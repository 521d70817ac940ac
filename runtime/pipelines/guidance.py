"""Classifier-free guidance on a UNet output computed for the batch [uncond, cond]."""

from __future__ import annotations

from typing import Any


def rescale_noise_cfg(xp: Any, noise_cfg: Any, noise_pred_text: Any, guidance_rescale: float = 0.0) -> Any:
    """Rescale the guided prediction to the text prediction's standard deviation (arXiv:2305.08891, 3.4)."""
    axes = tuple(range(1, noise_pred_text.ndim))
    std_text = xp.std(noise_pred_text, axis=axes, keepdims=True, ddof=1)
    std_cfg = xp.std(noise_cfg, axis=axes, keepdims=True, ddof=1)
    rescaled = noise_cfg * (std_text / std_cfg)
    return guidance_rescale * rescaled + (1 - guidance_rescale) * noise_cfg


def apply_guidance(xp: Any, noise_pred: Any, guidance_scale: float, guidance_rescale: float = 0.0) -> Any:
    """uncond + scale * (cond - uncond), then the optional rescale, as diffusers' pipelines do."""
    half = noise_pred.shape[0] // 2
    noise_pred_uncond, noise_pred_text = noise_pred[:half], noise_pred[half:]
    guided = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
    if guidance_rescale > 0.0:
        guided = rescale_noise_cfg(xp, guided, noise_pred_text, guidance_rescale)
    return guided


class ConceptGuidance:
    """A guidance rule over [negative, positive, *concepts] UNet predictions: ``embeds`` are the concepts' prompt
    embeddings (``count`` of them per image, after the positive ones in the UNet's batch), and a call makes one
    prediction of the chunks at each step, counting the steps itself (SEGA's edits, SLD's safety concept)."""

    def __init__(self, embeds: Any, count: int) -> None:
        self.embeds = embeds
        self.count = count
        self.step_index = 0

    def __call__(self, xp: Any, noise_pred: Any, guidance_scale: float) -> Any:
        chunks = xp.split(noise_pred, 2 + self.count)
        guided = self.combine(xp, chunks[0], chunks[1], chunks[2:], guidance_scale, self.step_index)
        self.step_index += 1
        return guided

    def combine(
        self, xp: Any, uncond: Any, text: Any, concepts: Any, guidance_scale: float, i: int
    ) -> Any:  # pragma: no cover - each rule's own
        raise NotImplementedError
