"""SDXL's prompt encoding (diffusers' ``StableDiffusionXLPipeline.encode_prompt``): the penultimate
hidden states of both text encoders side by side, and the second encoder's pooled embeddings."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sdrt.runtime.errors import BundleError, InputError

from .arrays import repeat_rows, to_xp
from .prompts import PromptEmbeds, negative_list, prompt_list


class SDXLPromptEncoder:
    def __init__(
        self,
        encoders: list[tuple[Any, Any]],
        xp: ModuleType,
        force_zeros_for_empty_prompt: bool,
        clip_skip: bool = False,
    ) -> None:
        """``encoders``: (tokenizer, text encoder) pairs, first and second; ``clip_skip``: the prompts'
        hidden states from the earlier layer the bundle was built for (not the negative prompts')."""
        self.encoders = encoders
        self.xp = xp
        self.force_zeros_for_empty_prompt = force_zeros_for_empty_prompt
        self.clip_skip = clip_skip

    def encode_pair(
        self,
        prompts: list[str],
        prompts_2: list[str],
        max_length: int,
        layer: str = "penultimate_hidden_state",
    ) -> tuple[Any, Any]:
        """(hidden states of both encoders concatenated on features, pooled embeddings)."""
        hidden, pooled = [], None
        for texts, (tokenizer, encoder) in zip((prompts, prompts_2), self.encoders):
            expand = getattr(tokenizer, "expand_multi_vector_tokens", None)  # textual inversions
            texts = [expand(t) for t in texts] if expand else texts
            ids = tokenizer(
                texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="np"
            ).input_ids
            outputs = encoder(ids)
            if layer not in outputs:
                raise BundleError(
                    f"the {encoder.name} engine has no `{layer}` output, which this call needs; "
                    "rebuild the bundle with build-engine"
                )
            if pooled is None and "text_embeds" in outputs:
                pooled = outputs["text_embeds"]
            hidden.append(outputs[layer])
        if pooled is None:
            raise BundleError("no SDXL text encoder engine has a `text_embeds` output (pooled embeddings)")
        return self.xp.concatenate(hidden, axis=-1), pooled

    def encode(
        self,
        prompt: str | list[str] | None,
        prompt_2: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
        negative_prompt: str | list[str] | None = None,
        negative_prompt_2: str | list[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
    ) -> PromptEmbeds:
        xp, n = self.xp, num_images_per_prompt
        prompts = prompt_list(prompt, prompt_embeds)
        if prompts is not None:
            prompts_2 = prompt_list(prompt_2 or prompts)
            if len(prompts_2) != len(prompts):
                raise InputError(f"`prompt_2` has {len(prompts_2)} entries, `prompt` {len(prompts)}")
            layer = "clip_skip_hidden_state" if self.clip_skip else "penultimate_hidden_state"
            prompt_embeds, pooled_prompt_embeds = self.encode_pair(
                prompts, prompts_2, self.encoders[0][0].model_max_length, layer
            )
        elif pooled_prompt_embeds is None:
            raise InputError("with `prompt_embeds`, pass `pooled_prompt_embeds` too")
        prompt_embeds, pooled_prompt_embeds = to_xp(xp, prompt_embeds), to_xp(xp, pooled_prompt_embeds)
        embeds = PromptEmbeds(
            repeat_rows(xp, prompt_embeds, n), pooled=repeat_rows(xp, pooled_prompt_embeds, n)
        )
        if not do_classifier_free_guidance:
            return embeds
        if negative_prompt_embeds is None:
            if negative_prompt is None and self.force_zeros_for_empty_prompt:
                negative_prompt_embeds = xp.zeros_like(prompt_embeds)
                negative_pooled_prompt_embeds = xp.zeros_like(pooled_prompt_embeds)
            else:
                batch_size = prompt_embeds.shape[0]
                negatives = negative_list(negative_prompt or "", batch_size)
                negatives_2 = negative_list(negative_prompt_2 or negative_prompt or "", batch_size)
                negative_prompt_embeds, negative_pooled_prompt_embeds = self.encode_pair(
                    negatives, negatives_2, prompt_embeds.shape[1]
                )
        elif negative_pooled_prompt_embeds is None:
            raise InputError("with `negative_prompt_embeds`, pass `negative_pooled_prompt_embeds` too")
        embeds.negative_prompt_embeds = repeat_rows(xp, to_xp(xp, negative_prompt_embeds), n)
        embeds.negative_pooled = repeat_rows(xp, to_xp(xp, negative_pooled_prompt_embeds), n)
        return embeds
