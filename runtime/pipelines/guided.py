"""The text-guided generation every Stable Diffusion pipeline runs, configured by each of them.

A pipeline's ``__call__`` checks its arguments, encodes the prompts, prepares its latents and whatever
else the UNet sees, and hands a :class:`GuidedCall` to :meth:`TextGuidedPipeline.generate`: the denoising
loop with classifier-free guidance, the optional blend after each step (inpainting with a plain UNet),
diffusers' step-end callbacks, the VAE decode and the output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .guidance import apply_guidance
from .outputs import StableDiffusionPipelineOutput
from .prompts import PromptEmbeds

StepCallback = Callable[[int, Any, dict[str, Any]], None]


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance: ``enabled`` when the UNet sees [negative, positive] batches."""

    scale: float
    rescale: float = 0.0
    enabled: bool = True


@dataclass
class GuidedCall:
    """One prepared generation: the loop reads and the step-end callback may replace ``state``'s tensors."""

    latents: Any
    timesteps: Any
    num_inference_steps: int
    embeds: PromptEmbeds
    guidance: Guidance
    noise: NoiseSource
    eta: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)  # further tensors, by their callback names
    unet_inputs: dict[str, str] = field(default_factory=dict)  # UNet keyword -> state entry (SDXL)
    extra_channels: tuple[str, ...] = ()  # state entries concatenated to the latents (inpainting UNet)
    after_step: StepCallback | None = None
    # further UNet keywords computed each step from (state, t, the scaled model input before extra channels):
    # the ControlNet residuals
    step_inputs: Callable[[dict[str, Any], Any, Any], dict[str, Any]] | None = None


class TextGuidedPipeline(DiffusionPipeline):
    """What the text-guided pipelines share; each subclass adds its ``encode_prompt`` and ``__call__``."""

    def do_guidance(self, guidance_scale: float) -> bool:
        return guidance_scale > 1 and self.unet.config.time_cond_proj_dim is None

    def guidance(self, guidance_scale: float, guidance_rescale: float = 0.0) -> Guidance:
        """The call's guidance settings, also kept in its state for diffusers' properties (``guidance_scale``...)."""
        guidance = Guidance(guidance_scale, guidance_rescale, self.do_guidance(guidance_scale))
        state = self._state
        if state is not None:
            state.guidance_scale, state.guidance_rescale = guidance_scale, guidance_rescale
            state.do_classifier_free_guidance = guidance.enabled
        return guidance

    def check_inputs(
        self, height: int, width: int, num_images_per_prompt: int, callback_inputs: Sequence[str]
    ) -> None:
        """The size against the engines' ranges and the callback's tensor names (the types and ranges of
        every argument are checked before the call starts: ``checks.py``)."""
        self.check_size(height, width)
        if num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")
        self.check_callback_inputs(callback_inputs)

    def noise_source(self, generator: GeneratorLike, batch: int) -> NoiseSource:
        """Where every random draw of the call comes from (one generator, or one per image)."""
        check_generator_list(generator, batch)
        return NoiseSource(generator, self.xp)

    def prepare_latents(
        self,
        batch_size: int,
        num_channels: int,
        height: int,
        width: int,
        noise: NoiseSource,
        latents: Any = None,
    ) -> Any:
        """Initial noise (or the caller's ``latents``) times the scheduler's ``init_noise_sigma``."""
        shape = (batch_size, num_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is None:
            latents = noise.randn(shape)
        else:
            latents = self.to_xp(latents)
            if tuple(latents.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(latents.shape)}, expected {shape}")
        return latents * self.scheduler.init_noise_sigma

    def guided_noise(self, call: GuidedCall, state: dict[str, Any], t: Any) -> Any:
        """One UNet evaluation: duplicate for guidance, ``scale_model_input``, extra channels, guide."""
        latents = state["latents"]
        model_input = self.xp.concatenate([latents] * 2) if call.guidance.enabled else latents
        model_input = self.scheduler.scale_model_input(model_input, t)
        added = {name: state[key] for name, key in call.unet_inputs.items()}
        if call.step_inputs is not None:
            added |= call.step_inputs(state, t, model_input)
        if call.extra_channels:
            model_input = self.xp.concatenate([model_input, *(state[k] for k in call.extra_channels)], axis=1)
        noise_pred = self.unet(model_input, t, state["prompt_embeds"], **added)
        if call.guidance.enabled:
            noise_pred = apply_guidance(self.xp, noise_pred, call.guidance.scale, call.guidance.rescale)
        return noise_pred

    def generate(
        self,
        call: GuidedCall,
        *,
        output_type: str,
        return_dict: bool,
        callback_on_step_end: Callable[..., dict[str, Any]] | None,
        callback_on_step_end_tensor_inputs: Sequence[str],
    ) -> Any:
        """Denoise ``call``, decode it, and return the pipeline's output (``output``)."""
        embeds = call.embeds
        unet_embeds = embeds.prompt_embeds
        if call.guidance.enabled:
            unet_embeds = self.xp.concatenate([embeds.negative_prompt_embeds, embeds.prompt_embeds])
        state = {
            "latents": call.latents,
            "prompt_embeds": unet_embeds,
            "negative_prompt_embeds": embeds.negative_prompt_embeds,
            **call.state,
        }
        latents = self.denoise(
            state,
            call.timesteps,
            call.num_inference_steps,
            lambda state, t: self.guided_noise(call, state, t),
            noise=call.noise,
            eta=call.eta,
            after_step=call.after_step,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        return self.output(self.decode_latents(latents, output_type), return_dict)

    def output(self, images: Any, return_dict: bool) -> Any:
        return StableDiffusionPipelineOutput(images) if return_dict else (images, None)
