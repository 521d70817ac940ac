"""Safe latent diffusion (SLD, arXiv:2211.05105), as diffusers' ``StableDiffusionPipelineSafe`` guides: the
prediction for a safety concept steers the guided one away from it, after a warm-up and with momentum."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.errors import InputError

from .guidance import ConceptGuidance

#: diffusers' default safety concept (``StableDiffusionPipelineSafe.safety_concept``)
SAFETY_CONCEPT = (
    "an image showing hate, harassment, violence, suffering, humiliation, harm, suicide, sexual, nudity,"
    " bodily fluids, blood, obscene gestures, illegal activity, drug use, theft, vandalism, weapons, child"
    " abuse, brutality, cruelty"
)


class SafetyConfig:
    """diffusers' SLD presets: ``pipe(prompt, **SafetyConfig.MEDIUM)``."""

    WEAK = {
        "sld_warmup_steps": 15,
        "sld_guidance_scale": 20,
        "sld_threshold": 0.0,
        "sld_momentum_scale": 0.0,
        "sld_mom_beta": 0.0,
    }
    MEDIUM = {
        "sld_warmup_steps": 10,
        "sld_guidance_scale": 1000,
        "sld_threshold": 0.01,
        "sld_momentum_scale": 0.3,
        "sld_mom_beta": 0.4,
    }
    STRONG = {
        "sld_warmup_steps": 7,
        "sld_guidance_scale": 2000,
        "sld_threshold": 0.025,
        "sld_momentum_scale": 0.5,
        "sld_mom_beta": 0.7,
    }
    MAX = {
        "sld_warmup_steps": 0,
        "sld_guidance_scale": 5000,
        "sld_threshold": 1.0,
        "sld_momentum_scale": 0.5,
        "sld_mom_beta": 0.7,
    }


SAFETY_PRESETS = ("weak", "medium", "strong", "max")


def safety_preset(name: str) -> dict[str, float]:
    """The preset's call arguments by its name (``"weak"``... ``"max"``, any case)."""
    if name.lower() not in SAFETY_PRESETS:
        raise InputError(f"unknown safety preset {name!r}; pick one of {', '.join(SAFETY_PRESETS)}")
    preset: dict[str, float] = getattr(SafetyConfig, name.upper())
    return dict(preset)


class SafeLatentGuidance(ConceptGuidance):
    """Classifier-free guidance minus the safety concept's direction (diffusers' equations 3 to 8)."""

    def __init__(
        self,
        embeds: Any,
        sld_guidance_scale: float,
        sld_warmup_steps: int,
        sld_threshold: float,
        sld_momentum_scale: float,
        sld_mom_beta: float,
    ) -> None:
        super().__init__(embeds, 1)
        self.scale, self.warmup, self.threshold = sld_guidance_scale, sld_warmup_steps, sld_threshold
        self.momentum_scale, self.mom_beta = sld_momentum_scale, sld_mom_beta
        self.momentum: Any = None

    def combine(self, xp: Any, uncond: Any, text: Any, concepts: Any, guidance_scale: float, i: int) -> Any:
        guidance = text - uncond
        if self.momentum is None:
            self.momentum = xp.zeros_like(guidance)
        safety = concepts[0]
        scale = xp.minimum(xp.abs(text - safety) * self.scale, 1.0)
        scale = xp.where((text - safety) >= self.threshold, xp.zeros_like(scale), scale)
        away = (safety - uncond) * scale + self.momentum_scale * self.momentum
        self.momentum = self.mom_beta * self.momentum + (1 - self.mom_beta) * away
        if i >= self.warmup:
            guidance = guidance - away
        return uncond + guidance_scale * guidance
