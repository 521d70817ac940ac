"""Prompt handling: the prompt arguments checked and listed, and Stable Diffusion 1/2's prompt encoding
(diffusers' ``encode_prompt``) over a tokenizer and a text encoder, into :class:`PromptEmbeds`."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, overload

from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.text.chunks import prompt_chunks

from .arrays import repeat_rows, to_xp
from .weighted_prompts import A1111, encode_chunks, pad_chunks


@dataclass
class PromptEmbeds:
    """Per image (prompts x ``num_images_per_prompt``); the negative ones are None without guidance.
    SDXL adds the pooled embeddings of its second encoder."""

    prompt_embeds: Any
    negative_prompt_embeds: Any = None
    pooled: Any = None
    negative_pooled: Any = None

    @property
    def batch(self) -> int:
        return int(self.prompt_embeds.shape[0])


@overload
def prompt_list(prompt: str | list[str]) -> list[str]: ...
@overload
def prompt_list(prompt: str | list[str] | None, prompt_embeds: Any) -> list[str] | None: ...
def prompt_list(prompt: str | list[str] | None, prompt_embeds: Any = None) -> list[str] | None:
    """``prompt`` as a list (``None`` when ``prompt_embeds`` are given instead)."""
    if prompt is not None and prompt_embeds is not None:
        raise InputError("pass either `prompt` or `prompt_embeds`, not both")
    if prompt is None:
        if prompt_embeds is None:
            raise InputError("pass `prompt` (a string or a list of strings) or `prompt_embeds`")
        return None
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list | tuple) and all(isinstance(p, str) for p in prompt):
        if not prompt:
            raise InputError("`prompt` is an empty list")
        return list(prompt)
    raise InputTypeError(f"`prompt` has to be a string or a list of strings, got {type(prompt).__name__}")


def negative_list(negative_prompt: str | list[str] | None, batch_size: int) -> list[str]:
    """The negative prompts for a batch: ``""`` when none, a string for every prompt, or one per prompt."""
    if negative_prompt is None:
        return [""] * batch_size
    if isinstance(negative_prompt, str):
        return [negative_prompt] * batch_size
    if not isinstance(negative_prompt, list | tuple) or not all(isinstance(p, str) for p in negative_prompt):
        raise InputTypeError(
            f"`negative_prompt` has to be a string or a list of strings, got {type(negative_prompt).__name__}"
        )
    if len(negative_prompt) != batch_size:
        raise InputError(
            f"`negative_prompt` has {len(negative_prompt)} entries, but `prompt` has {batch_size}: pass one "
            "negative prompt per prompt, or a single string for all of them"
        )
    return list(negative_prompt)


class PromptEncoder:
    """Stable Diffusion 1/2: the text encoder's last hidden state for the prompts and negative prompts;
    with ``clip_skip``, the prompts' come from the earlier layer the bundle was built for (as diffusers,
    which applies clip_skip to the prompts only). ``syntax="a1111"``: A1111's weights, ``BREAK`` and long
    prompts (``weighted_prompts``; clip_skip then applies to the negative prompts too, as in A1111), up to
    ``limit`` tokens (77 x chunks) when the UNet's sequence length is fixed."""

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: Any,
        xp: ModuleType,
        clip_skip: bool = False,
        syntax: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.xp = xp
        self.clip_skip = clip_skip
        self.syntax = syntax
        self.limit = limit

    def encode_a1111(self, prompts: list[str], negatives: list[str] | None) -> tuple[Any, Any]:
        """(prompt embeds, negative embeds or None) in A1111's syntax, padded to the same chunk count."""
        output = "clip_skip_hidden_state" if self.clip_skip else "last_hidden_state"
        chunked = [prompt_chunks(self.tokenizer, p) for p in prompts + (negatives or [])]
        chunked = pad_chunks(self.tokenizer, chunked, max(len(c) for c in chunked), self.limit)
        embeds = encode_chunks(chunked, self.text_encoder, output, self.xp)[0]
        n = len(prompts)
        return (embeds[:n], embeds[n:]) if negatives is not None else (embeds, None)

    def hidden_states(self, prompts: list[str], max_length: int, output: str = "last_hidden_state") -> Any:
        expand = getattr(self.tokenizer, "expand_multi_vector_tokens", None)  # textual inversions
        prompts = [expand(p) for p in prompts] if expand else prompts
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="np"
        ).input_ids
        return self.text_encoder(ids)[output]

    def encode(
        self,
        prompt: str | list[str] | None,
        num_images_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
    ) -> PromptEmbeds:
        """diffusers' ``StableDiffusionPipeline.encode_prompt``, each embedding [images, 77, D]."""
        xp, n = self.xp, num_images_per_prompt
        prompts = prompt_list(prompt, prompt_embeds)
        if prompts is not None and self.syntax == A1111:
            negatives = None
            if do_classifier_free_guidance and negative_prompt_embeds is None:
                negatives = negative_list(negative_prompt, len(prompts))
            prompt_embeds, negative_prompt_embeds = self.encode_a1111(prompts, negatives)
        elif prompts is not None:
            output = "clip_skip_hidden_state" if self.clip_skip else "last_hidden_state"
            prompt_embeds = self.hidden_states(prompts, self.tokenizer.model_max_length, output)
        prompt_embeds = to_xp(xp, prompt_embeds)
        batch_size = prompt_embeds.shape[0]
        if not do_classifier_free_guidance:
            return PromptEmbeds(repeat_rows(xp, prompt_embeds, n))
        if negative_prompt_embeds is None:
            negative_prompt_embeds = self.hidden_states(
                negative_list(negative_prompt, batch_size), prompt_embeds.shape[1]
            )
        negative_prompt_embeds = to_xp(xp, negative_prompt_embeds)
        if negative_prompt_embeds.shape[0] != batch_size:
            raise InputError(
                f"`negative_prompt_embeds` has batch {negative_prompt_embeds.shape[0]}, `prompt_embeds` {batch_size}"
            )
        return PromptEmbeds(repeat_rows(xp, prompt_embeds, n), repeat_rows(xp, negative_prompt_embeds, n))
