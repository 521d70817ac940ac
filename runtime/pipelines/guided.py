"""The text-guided generation every Stable Diffusion pipeline runs, configured by each of them.

A pipeline's ``__call__`` reads what is its own (its images, their size), makes its conditioners
(``conditioners/``) and calls :meth:`TextGuidedPipeline.open_call`: the opening steps every pipeline shares,
written once here (size and callback checks, guidance, prompt encoding by the family's
``encode_call_prompts``, noise, timesteps, the conditioners' ``prepare``, the starting latents), which read
the call's own arguments by diffusers' names. :meth:`TextGuidedPipeline.generate` then runs the denoising
loop with classifier-free guidance and the conditioners' per-step hooks, diffusers' step-end callbacks, the
VAE decode and the output.

LoRA and textual inversion are composed helpers (``lora.LoraLoader``, ``textual_inversion.EmbeddingLoader``)
that the thin methods below (diffusers' names and signatures) delegate to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from . import ip_adapter
from .base import DiffusionPipeline
from .conditioners.base import Conditioner
from .guidance import ConceptGuidance, apply_guidance
from .lora import LoraLoader
from .outputs import StableDiffusionPipelineOutput
from .prompts import PromptEmbeds
from .sampling import DIFFUSION, Sampling, guidance_scale_embedding
from .step_cache import step_unet
from .textual_inversion import EmbeddingLoader


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
    num_images_per_prompt: int = 1
    state: dict[str, Any] = field(default_factory=dict)  # further tensors, by their callback names
    unet_inputs: dict[str, str] = field(default_factory=dict)  # UNet keyword -> state entry (SDXL)
    extra_channels: tuple[str, ...] = ()  # state entries concatenated to the latents (inpainting, depth)
    conditioners: list[Conditioner] = field(default_factory=list)
    #: a guidance rule with concept prompts after [negative, positive] (SEGA's edits, SLD's safety concept)
    rule: ConceptGuidance | None = None
    #: replaces predict + ``scheduler.step`` (``loop.denoise``'s ``step``: MultiDiffusion's views)
    step: Callable[[dict[str, Any], Any, dict[str, Any]], Any] | None = None
    unet: Any = None  # the UNet the loop runs: the pipeline's, or a DeepCache StepCache (cache_interval > 1)

    def after_step(self, i: int, t: Any, state: dict[str, Any]) -> None:
        for conditioner in self.conditioners:
            conditioner.after_step(i, t, state)


class TextGuidedPipeline(DiffusionPipeline):
    """What the text-guided pipelines share; a family adds its ``encode_call_prompts``, a task its ``__call__``."""

    #: each text encoder, its tokenizer and, for SDXL, the key of its vectors in an embedding file
    embedding_slots: tuple[tuple[str, str, str | None], ...] = (("text_encoder", "tokenizer", None),)
    #: how it guides, schedules and decodes (``sampling.CONSISTENCY`` for the latent consistency pipelines)
    sampling: Sampling = DIFFUSION

    def __init__(self, **parts: Any) -> None:
        super().__init__(**parts)
        self.lora_loader = LoraLoader(self)
        self.embedding_loader = EmbeddingLoader(self, self.embedding_slots)

    # ---- the opening steps ------------------------------------------------------------------------
    def encode_call_prompts(self, arguments: Mapping[str, Any], guidance: Guidance) -> PromptEmbeds:
        """The call's prompts (its arguments by diffusers' names) encoded as the family encodes them."""
        raise NotImplementedError(f"{type(self).__name__} names no prompt encoding")

    def open_call(
        self,
        size: tuple[int, int],
        conditioners: Sequence[Conditioner] = (),
        *,
        strength: float | None = None,
        denoising: tuple[float | None, float | None] = (None, None),
    ) -> GuidedCall:
        """The call prepared up to the loop: checks, guidance, prompts, noise, timesteps (the tail ``strength``
        keeps, when given; SDXL's ``denoising`` start and end fractions), each conditioner's ``prepare`` in
        order, and noise latents unless one set them."""
        arguments = self.call_arguments()
        height, width = size
        per_prompt = arguments.get("num_images_per_prompt", 1)
        self.check_inputs(height, width, per_prompt, self.callback_inputs(arguments))
        guidance = self.guidance(arguments["guidance_scale"], arguments.get("guidance_rescale", 0.0))
        embeds = self.encode_call_prompts(arguments, guidance)
        noise = self.noise_source(arguments.get("generator"), embeds.batch)
        timesteps, steps = self.sampling.timesteps(self.scheduler, arguments, strength, denoising)
        call = GuidedCall(
            None, timesteps, steps, embeds, guidance, noise, arguments.get("eta", 0.0), per_prompt
        )
        if self.sampling.decoded != "latents":
            call.state[self.sampling.decoded] = None
        self.add_guidance_embedding(call)
        call.unet = step_unet(self, getattr(self._state, "step_cache", None))
        call.conditioners = list(conditioners)
        for conditioner in call.conditioners:
            conditioner.prepare(self, call)
        if call.latents is None:
            in_channels = self.unet.config.in_channels
            latents = arguments.get("latents")
            call.latents = self.prepare_latents(embeds.batch, in_channels, height, width, noise, latents)
        self.check_channels(call)
        return call

    def add_guidance_embedding(self, call: GuidedCall) -> None:
        """A UNet with ``time_cond_proj_dim`` (LCM) takes the guidance scale as an embedding of
        ``guidance_scale - 1`` (``timestep_cond``), as every diffusers pipeline passes it."""
        dim = self.unet.config.time_cond_proj_dim
        if dim is None:
            return
        w = [call.guidance.scale - 1.0] * call.embeds.batch
        call.state["w_embedding"] = self.to_xp(guidance_scale_embedding(w, int(dim)))
        call.unet_inputs["timestep_cond"] = "w_embedding"

    def check_channels(self, call: GuidedCall) -> None:
        """The latents and the extra channels the conditioners add make the UNet's input channels."""
        if not call.extra_channels:
            return
        channels = call.latents.shape[1] + sum(call.state[k].shape[1] for k in call.extra_channels)
        if channels != self.unet.config.in_channels:
            raise InputError(
                f"the UNet takes {self.unet.config.in_channels} channels but the latents and "
                f"{', '.join(call.extra_channels)} give {channels}"
            )

    def do_guidance(self, guidance_scale: float) -> bool:
        return (
            self.sampling.guidance_batch
            and guidance_scale > 1
            and self.unet.config.time_cond_proj_dim is None
        )

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

    # ---- the loop and the output ------------------------------------------------------------------
    def guided_noise(self, call: GuidedCall, state: dict[str, Any], t: Any) -> Any:
        """One UNet evaluation: duplicate for guidance, ``scale_model_input``, conditioners' inputs, guide."""
        latents = state["latents"]
        copies = 2 + (call.rule.count if call.rule is not None else 0)
        model_input = self.xp.concatenate([latents] * copies) if call.guidance.enabled else latents
        model_input = self.scheduler.scale_model_input(model_input, t)
        added = {name: state[key] for name, key in call.unet_inputs.items()}
        for conditioner in call.conditioners:
            added |= conditioner.step_inputs(state, t, model_input)
        if call.extra_channels:
            model_input = self.xp.concatenate([model_input, *(state[k] for k in call.extra_channels)], axis=1)
        noise_pred = (call.unet or self.unet)(model_input, t, state["prompt_embeds"], **added)
        if call.guidance.enabled and call.rule is not None:
            return call.rule(self.xp, noise_pred, call.guidance.scale)
        if call.guidance.enabled:
            noise_pred = apply_guidance(self.xp, noise_pred, call.guidance.scale, call.guidance.rescale)
        return noise_pred

    def generate(self, call: GuidedCall) -> Any:
        """Denoise ``call``, decode it, and return the pipeline's output (``output_type``, ``return_dict`` and
        the step-end callback are the call's arguments)."""
        arguments = self.call_arguments()
        latents = self.run_loop(call)
        images = self.decode_latents(latents, arguments["output_type"])
        return self.output(images, arguments["return_dict"])

    def run_loop(self, call: GuidedCall) -> Any:
        """Denoise ``call``: guidance, its conditioners' hooks, the step-end callback; the final latents (or
        what the sampling decodes), not decoded."""
        arguments = self.call_arguments()
        callback: Callable[..., dict[str, Any]] | None = arguments.get("callback_on_step_end")
        embeds = call.embeds
        unet_embeds = embeds.prompt_embeds
        if call.guidance.enabled:
            concepts = [] if call.rule is None or call.rule.embeds is None else [call.rule.embeds]
            unet_embeds = self.xp.concatenate(
                [embeds.negative_prompt_embeds, embeds.prompt_embeds, *concepts]
            )
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
            after_step=call.after_step if call.conditioners else None,
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=self.callback_inputs(arguments),
            step=call.step,
        )
        if self.sampling.decoded != "latents":
            latents = state[self.sampling.decoded]
        return latents

    @staticmethod
    def callback_inputs(arguments: Mapping[str, Any]) -> Sequence[str]:
        """The step-end callback's tensor names (the deprecated pipelines without one: the latents)."""
        names: Sequence[str] = arguments.get("callback_on_step_end_tensor_inputs", ("latents",))
        return names

    def output(self, images: Any, return_dict: bool) -> Any:
        return StableDiffusionPipelineOutput(images) if return_dict else (images, None)

    # ---- IP-Adapter (a bundle built with --ip-adapter): diffusers' methods, delegated to ip_adapter.py ---
    def set_ip_adapter_scale(self, scale: Any) -> None:
        """diffusers' ``set_ip_adapter_scale``: a number, a list of one, or a dict by blocks; the UNet's
        ``ip_adapter_scale`` input from the next call on (pipelines sharing the UNet share it, as in diffusers)."""
        ip_adapter.set_ip_adapter_scale(self, scale)

    def prepare_ip_adapter_image_embeds(
        self,
        ip_adapter_image: Any,
        ip_adapter_image_embeds: Any,
        device: Any = None,
        num_images_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
    ) -> list[Any]:
        """diffusers' method: what ``ip_adapter_image_embeds`` takes, [negatives, embeddings] per adapter."""
        return ip_adapter.prepare_ip_adapter_image_embeds(
            self,
            ip_adapter_image,
            ip_adapter_image_embeds,
            num_images_per_prompt,
            do_classifier_free_guidance,
        )

    # ---- LoRA and textual inversion: diffusers' loader methods, delegated ---------------------------
    def load_lora_weights(
        self,
        pretrained_model_name_or_path_or_dict: str | os.PathLike[str] | dict[str, Any],
        adapter_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        """diffusers' ``load_lora_weights`` (see ``lora.LoraLoader.load_lora_weights``)."""
        self.lora_loader.load_lora_weights(pretrained_model_name_or_path_or_dict, adapter_name, **kwargs)

    def set_adapters(
        self, adapter_names: str | list[str], adapter_weights: float | list[float | None] | None = None
    ) -> None:
        self.lora_loader.set_adapters(adapter_names, adapter_weights)

    def get_active_adapters(self) -> list[str]:
        return self.lora_loader.get_active_adapters()

    def get_list_adapters(self) -> dict[str, list[str]]:
        return self.lora_loader.get_list_adapters()

    def delete_adapters(self, adapter_names: str | list[str]) -> None:
        self.lora_loader.delete_adapters(adapter_names)

    def disable_lora(self) -> None:
        self.lora_loader.disable_lora()

    def enable_lora(self) -> None:
        self.lora_loader.enable_lora()

    def unload_lora_weights(self) -> None:
        self.lora_loader.unload_lora_weights()

    def fuse_lora(
        self,
        components: list[str] | None = None,
        lora_scale: float = 1.0,
        adapter_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.lora_loader.fuse_lora(components, lora_scale, adapter_names, **kwargs)

    def unfuse_lora(self, components: list[str] | None = None, **kwargs: Any) -> None:
        self.lora_loader.unfuse_lora(components, **kwargs)

    def lora_call_scale(self, scale: float) -> None:
        self.lora_loader.lora_call_scale(scale)

    def lora_at_call_start(self) -> Any:
        return self.lora_loader.snapshot()

    def load_textual_inversion(
        self, pretrained_model_name_or_path: str | os.PathLike[str], token: str | None = None, **kwargs: Any
    ) -> None:
        """diffusers' ``load_textual_inversion`` (see ``textual_inversion.EmbeddingLoader``)."""
        self.embedding_loader.load_textual_inversion(pretrained_model_name_or_path, token, **kwargs)

    def unload_textual_inversion(self) -> None:
        self.embedding_loader.unload_textual_inversion()
