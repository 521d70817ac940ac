"""SDXL's prompt encoding (diffusers' ``StableDiffusionXLPipeline.encode_prompt``): the penultimate
hidden states of both text encoders side by side, and the second encoder's pooled embeddings."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sdrt.runtime.errors import BundleError, InputError
from sdrt.runtime.text.chunks import prompt_chunks

from .arrays import repeat_rows, to_xp
from .prompts import PromptEmbeds, negative_list, prompt_list
from .weighted_prompts import A1111, encode_chunks, pad_chunks


class SDXLPromptEncoder:
    def __init__(
        self,
        encoders: list[tuple[Any, Any]],
        xp: ModuleType,
        force_zeros_for_empty_prompt: bool,
        clip_skip: bool = False,
        syntax: str | None = None,
        limit: int | None = None,
    ) -> None:
        """``encoders``: (tokenizer, text encoder) pairs, first and second; ``clip_skip``: the prompts'
        hidden states from the earlier layer the bundle was built for (not the negative prompts');
        ``syntax="a1111"``: A1111's weights, ``BREAK`` and long prompts up to ``limit`` tokens, see
        :meth:`encode_a1111`."""
        self.encoders = encoders
        self.xp = xp
        self.force_zeros_for_empty_prompt = force_zeros_for_empty_prompt
        self.clip_skip = clip_skip
        self.syntax = syntax
        self.limit = limit

    def encode_a1111(self, texts: list[str], texts_2: list[str], count: int) -> tuple[Any, Any, int]:
        """A1111's SDXL conditioning: each encoder's weighted chunks (``weighted_prompts``) side by side on
        features, the pooled embeddings of the first chunk; padded to at least ``count`` chunks. Returns
        (hidden states, pooled, chunk count)."""
        layer = "clip_skip_hidden_state" if self.clip_skip else "penultimate_hidden_state"
        chunked = [
            [prompt_chunks(tokenizer, t) for t in group]
            for group, (tokenizer, _) in zip((texts, texts_2), self.encoders)
        ]
        count = max([count] + [len(c) for group in chunked for c in group])
        hidden, pooled = [], None
        for group, (tokenizer, encoder) in zip(chunked, self.encoders):
            z, first = encode_chunks(pad_chunks(tokenizer, group, count, self.limit), encoder, layer, self.xp)
            hidden.append(z)
            pooled = first if pooled is None else pooled
        if pooled is None:
            raise BundleError("no SDXL text encoder engine has a `text_embeds` output (pooled embeddings)")
        return self.xp.concatenate(hidden, axis=-1), pooled, count

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
            if self.syntax == A1111:
                return self.encode_a1111_call(
                    prompts, prompts_2, n, do_classifier_free_guidance, negative_prompt, negative_prompt_2
                )
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

    def encode_a1111_call(
        self,
        prompts: list[str],
        prompts_2: list[str],
        n: int,
        guided: bool,
        negative_prompt: str | list[str] | None,
        negative_prompt_2: str | list[str] | None,
    ) -> PromptEmbeds:
        """The call's embeddings in A1111's syntax; empty negative prompts give zeros (A1111 zeroes them
        for SDXL, as diffusers' ``force_zeros_for_empty_prompt``)."""
        xp = self.xp
        negatives = negative_list(negative_prompt or "", len(prompts))
        negatives_2 = negative_list(negative_prompt_2 or negative_prompt or "", len(prompts))
        zeros = self.force_zeros_for_empty_prompt and not any(negatives + negatives_2)
        count = 1
        if guided and not zeros:  # the prompts padded to the negative prompts' chunk count, and back
            tokenizer = self.encoders[0][0]
            count = max(len(prompt_chunks(tokenizer, t)) for t in negatives + negatives_2)
        hidden, pooled, count = self.encode_a1111(prompts, prompts_2, count)
        embeds = PromptEmbeds(repeat_rows(xp, hidden, n), pooled=repeat_rows(xp, pooled, n))
        if not guided:
            return embeds
        if zeros:
            negative, negative_pooled = xp.zeros_like(hidden), xp.zeros_like(pooled)
        else:
            negative, negative_pooled, _ = self.encode_a1111(negatives, negatives_2, count)
        embeds.negative_prompt_embeds = repeat_rows(xp, negative, n)
        embeds.negative_pooled = repeat_rows(xp, negative_pooled, n)
        return embeds
