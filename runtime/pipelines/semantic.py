"""``SemanticStableDiffusionPipeline``: SD 1.x / 2.x text-to-image with SEGA's editing prompts
(``semantic_guidance.py``), as diffusers runs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call, take_callback
from .guided import GuidedCall
from .outputs import SemanticStableDiffusionPipelineOutput
from .semantic_guidance import SemanticGuidance, edit_concepts
from .stable_diffusion import StableDiffusionBase


class SemanticStableDiffusionPipeline(StableDiffusionBase):
    """``pipe(prompt, editing_prompt=["smiling", "glasses"], edit_guidance_scale=5, edit_warmup_steps=10,
    reverse_editing_direction=[False, True])``; guided by editing prompts only with ``guidance_scale`` > 1."""

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
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
        editing_prompt: str | list[str] | None = None,
        editing_prompt_embeddings: Any = None,
        reverse_editing_direction: bool | list[bool] | None = False,
        edit_guidance_scale: float | list[float] | None = 5,
        edit_warmup_steps: int | list[int] | None = 10,
        edit_cooldown_steps: int | list[int] | None = None,
        edit_threshold: float | list[float] | None = 0.9,
        edit_momentum_scale: float | None = 0.1,
        edit_mom_beta: float | None = 0.4,
        edit_weights: list[float] | None = None,
        sem_guidance: list[Any] | None = None,
    ) -> SemanticStableDiffusionPipelineOutput | tuple:
        """diffusers' arguments and defaults; a per-concept list (``edit_guidance_scale``, ``edit_weights``...)
        has one value per editing prompt."""
        take_callback(self._state, callback, callback_steps)
        default_height, default_width = self.default_size()
        call = self.open_call((height or default_height, width or default_width))
        if call.guidance.enabled:
            call.rule = self.semantic_guidance(call)
        images, flags = self.generate(call)[:2]
        return SemanticStableDiffusionPipelineOutput(images, flags) if return_dict else (images, flags)

    def semantic_guidance(self, call: GuidedCall) -> SemanticGuidance:
        """The call's editing prompts encoded (each once per prompt, then per image, as diffusers orders them)."""
        arguments = self.call_arguments()
        editing, embeddings = arguments["editing_prompt"], arguments["editing_prompt_embeddings"]
        per_prompt = call.num_images_per_prompt
        prompts = call.embeds.batch // per_prompt
        if isinstance(editing, str):
            editing = [editing]
        if editing:
            texts = [text for text in editing for _ in range(prompts)]
            embeds = self.prompt_encoder.encode(texts, per_prompt, False).prompt_embeds
            count = len(editing)
        elif embeddings is not None:
            embeds = self.xp.tile(self.to_xp(embeddings), (prompts, 1, 1))
            embeds = self.xp.repeat(embeds, per_prompt, axis=0)
            count = int(embeddings.shape[0])
        else:
            embeds, count = None, 0
        sem_guidance = arguments["sem_guidance"]
        if sem_guidance is not None and len(sem_guidance) < call.num_inference_steps:
            raise InputError(
                f"`sem_guidance` has {len(sem_guidance)} steps' terms for {call.num_inference_steps} steps"
            )
        return SemanticGuidance(
            embeds,
            edit_concepts(count, arguments),
            arguments["edit_momentum_scale"],
            arguments["edit_mom_beta"],
            None if sem_guidance is None else [self.to_xp(term) for term in sem_guidance],
        )
