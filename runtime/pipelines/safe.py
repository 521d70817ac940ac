"""``StableDiffusionPipelineSafe``: SD 1.x / 2.x text-to-image with safe latent diffusion
(``safe_guidance.py``), as diffusers runs it; no safety checker runs (diffusers' ``safety_checker=None``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call, take_callback
from .outputs import StableDiffusionSafePipelineOutput
from .safe_guidance import SAFETY_CONCEPT, SafeLatentGuidance
from .stable_diffusion import StableDiffusionBase


class StableDiffusionPipelineSafe(StableDiffusionBase):
    """``pipe(prompt, **SafetyConfig.MEDIUM)`` (``sdrt.runtime.SafetyConfig``: WEAK, MEDIUM, STRONG, MAX);
    ``pipe.safety_concept`` is the text guided away from."""

    optional_components: tuple[
        str, ...
    ] = ()  # its safety checker keeps the unsafe images apart: not run here

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._safety_text_concept = SAFETY_CONCEPT

    def run_safety_checker(self, image: Any, output_type: str = "pil") -> tuple[Any, list[bool] | None]:
        """Safe latent guidance is its safety: no safety checker runs here (``nsfw_content_detected`` None)."""
        return image, None

    @property
    def safety_concept(self) -> str:
        return self._safety_text_concept

    @safety_concept.setter
    def safety_concept(self, concept: str) -> None:
        self._safety_text_concept = concept

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        ip_adapter_image: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        sld_guidance_scale: float = 1000,
        sld_warmup_steps: int = 10,
        sld_threshold: float = 0.01,
        sld_momentum_scale: float = 0.3,
        sld_mom_beta: float = 0.4,
    ) -> StableDiffusionSafePipelineOutput | tuple:
        """diffusers' arguments and defaults; ``output_type`` "pil" or (anything else, as diffusers) NumPy."""
        take_callback(self._state, callback, callback_steps)
        self.call_arguments()["output_type"] = "pil" if output_type == "pil" else "np"
        default_height, default_width = self.default_size()
        call = self.open_call((height or default_height, width or default_width))
        concept = self._safety_text_concept
        enabled = sld_guidance_scale > 1.0 and call.guidance.enabled
        if enabled:
            concept_embeds = self.prompt_encoder.encode([concept], call.embeds.batch, False).prompt_embeds
            call.rule = SafeLatentGuidance(
                concept_embeds,
                sld_guidance_scale,
                sld_warmup_steps,
                sld_threshold,
                sld_momentum_scale,
                sld_mom_beta,
            )
        else:
            warnings.warn("Safety checker disabled!", stacklevel=3)
        images = self.generate(call)[0]
        applied = concept if enabled else None
        if not return_dict:
            return (images, None, applied, None)
        return StableDiffusionSafePipelineOutput(images, None, None, applied)
