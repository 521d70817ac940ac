"""Prompt handling shared by the pipelines: batch checks and Stable Diffusion 1/2 prompt encoding."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.errors import InputError, InputTypeError


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


def repeat_rows(xp: Any, array: Any, times: int) -> Any:
    """Each row ``times`` times in a row (torch's ``repeat(1, n, 1).view(b * n, ...)``)."""
    return array if times == 1 else xp.repeat(array, times, axis=0)


def encode_prompt(
    pipe: Any,
    prompt: list[str] | None,
    num_images_per_prompt: int,
    do_classifier_free_guidance: bool,
    negative_prompt: str | list[str] | None = None,
    prompt_embeds: Any = None,
    negative_prompt_embeds: Any = None,
) -> tuple[Any, Any]:
    """diffusers' ``StableDiffusionPipeline.encode_prompt``: (prompt_embeds, negative_prompt_embeds),
    each [batch * num_images_per_prompt, 77, D]; the negative ones are None without guidance."""
    xp = pipe.xp
    max_length = pipe.tokenizer.model_max_length
    if prompt_embeds is None:
        ids = pipe.tokenizer(prompt, padding="max_length", max_length=max_length, truncation=True).input_ids
        prompt_embeds = pipe.text_encoder(ids)["last_hidden_state"]
    prompt_embeds = pipe.to_xp(prompt_embeds)
    batch_size = prompt_embeds.shape[0]
    prompt_embeds = repeat_rows(xp, prompt_embeds, num_images_per_prompt)
    if do_classifier_free_guidance and negative_prompt_embeds is None:
        uncond = negative_list(negative_prompt, batch_size)
        ids = pipe.tokenizer(uncond, padding="max_length", max_length=prompt_embeds.shape[1], truncation=True)
        negative_prompt_embeds = pipe.text_encoder(ids.input_ids)["last_hidden_state"]
    if do_classifier_free_guidance:
        negative_prompt_embeds = pipe.to_xp(negative_prompt_embeds)
        if negative_prompt_embeds.shape[0] != batch_size:
            raise InputError(
                f"`negative_prompt_embeds` has batch {negative_prompt_embeds.shape[0]}, `prompt_embeds` {batch_size}"
            )
        negative_prompt_embeds = repeat_rows(xp, negative_prompt_embeds, num_images_per_prompt)
    return prompt_embeds, negative_prompt_embeds
