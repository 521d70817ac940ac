"""SEGA, semantic guidance (arXiv:2301.12247), as diffusers' ``SemanticStableDiffusionPipeline`` computes it:
each editing prompt's prediction pulls (or, reversed, pushes) the guided one, keeping only its largest
``edit_threshold`` share of values, after ``edit_warmup_steps`` and with momentum."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sdrt.runtime.errors import InputError

from .guidance import ConceptGuidance

# per-concept call arguments (a value for all, or a list with one per editing prompt) -> EditConcept field
PER_CONCEPT = {
    "edit_guidance_scale": "scale",
    "edit_threshold": "threshold",
    "reverse_editing_direction": "reverse",
    "edit_weights": "weight",
    "edit_warmup_steps": "warmup",
    "edit_cooldown_steps": "cooldown",
}


@dataclass(frozen=True)
class EditConcept:
    """One editing prompt's settings (``cooldown`` None: never cooled down)."""

    scale: float = 5.0
    threshold: float = 0.9
    reverse: bool = False
    weight: float = 1.0
    warmup: int = 10
    cooldown: int | None = None


def edit_concepts(count: int, arguments: dict[str, Any]) -> list[EditConcept]:
    """The ``count`` editing prompts' settings from the call's arguments; a list of another length is an
    error naming it (diffusers would index past its end or ignore the rest)."""
    values: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, key in PER_CONCEPT.items():
        value = arguments.get(name)
        if name == "edit_weights" and not value:
            continue  # diffusers: no weights -> 1.0 each
        if isinstance(value, (list, tuple)):
            if len(value) != count:
                raise InputError(
                    f"`{name}` has {len(value)} values for {count} editing prompts; pass one value for all "
                    "or one per editing prompt"
                )
            for concept, item in zip(values, value):
                concept[key] = item
        elif name != "edit_weights":
            for concept in values:
                concept[key] = value
    return [EditConcept(**concept) for concept in values]


class SemanticGuidance(ConceptGuidance):
    """Classifier-free guidance plus the editing prompts' guidance, and ``sem_guidance``'s per-step terms."""

    def __init__(
        self,
        embeds: Any,
        concepts: Sequence[EditConcept],
        momentum_scale: float,
        mom_beta: float,
        sem_guidance: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(embeds, len(concepts))
        self.concepts = list(concepts)
        self.momentum_scale, self.mom_beta = momentum_scale, mom_beta
        self.sem_guidance = sem_guidance
        self.momentum: Any = None

    def combine(self, xp: Any, uncond: Any, text: Any, concepts: Any, guidance_scale: float, i: int) -> Any:
        guidance = guidance_scale * (text - uncond)
        if self.momentum is None:
            self.momentum = xp.zeros_like(guidance)
        if self.concepts:
            guidance = self.edit(xp, uncond, guidance, concepts, i)
        if self.sem_guidance is not None:
            guidance = guidance + xp.asarray(self.sem_guidance[i], dtype=guidance.dtype)
        return uncond + guidance

    def edit(self, xp: Any, uncond: Any, guidance: Any, predictions: Any, i: int) -> Any:
        """diffusers' per-concept loop: thresholded edit directions, their weights, warm-up and momentum."""
        count, batch = len(self.concepts), guidance.shape[0]
        weights = xp.zeros((count, batch), dtype=guidance.dtype)
        edits = xp.zeros((count, *guidance.shape), dtype=guidance.dtype)
        warm = []
        for c, (concept, prediction) in enumerate(zip(self.concepts, predictions)):
            if i >= concept.warmup:
                warm.append(c)
            if i >= (i + 1 if concept.cooldown is None else concept.cooldown):
                continue
            direction = (prediction - uncond) * (-1 if concept.reverse else 1)
            weights[c, :] = concept.weight
            direction = direction * concept.scale
            magnitude = xp.abs(direction)
            flat = magnitude.reshape(batch, direction.shape[1], -1)
            cut = xp.quantile(flat, concept.threshold, axis=2).astype(guidance.dtype)
            edits[c] = xp.where(magnitude >= cut[:, :, None, None], direction, 0)
        if 0 < len(warm) < count:  # some concepts warm: they guide now, normalised, without momentum
            warm_weights = xp.maximum(weights[warm], 0)
            warm_weights = warm_weights / warm_weights.sum(axis=0)
            guidance = guidance + xp.einsum("cb,cbijk->bijk", warm_weights, edits[warm])
        weights = xp.nan_to_num(xp.maximum(weights, 0))
        edit = xp.einsum("cb,cbijk->bijk", weights, edits)
        edit = edit + self.momentum_scale * self.momentum
        self.momentum = self.mom_beta * self.momentum + (1 - self.mom_beta) * edit
        if len(warm) == count:
            guidance = guidance + edit
        return guidance
