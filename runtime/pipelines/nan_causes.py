"""What a call had that can make NaN or Inf, for the error that reports them: the run-time LoRA and its
scales, the embeddings its prompts used, the arrays and callback its caller gave, an fp16 engine. The
caller's arrays are checked finite before any work (``checks.py``), and LoRA files and embeddings when they
load, so what is left here is finite values that overflow, or damaged engines (named when nothing else is
there): never the fp16 advice for an fp32 bundle.
"""

from __future__ import annotations

from typing import Any

from sdrt.runtime.errors import EngineError

_PROMPTS = ("prompt", "negative_prompt", "prompt_2", "negative_prompt_2")
_ARRAYS = (  # images are range-checked; these can be any finite size
    "latents",
    "prompt_embeds",
    "negative_prompt_embeds",
    "pooled_prompt_embeds",
    "negative_pooled_prompt_embeds",
)


def nonfinite_error(pipe: Any, what: str, component: str) -> EngineError:
    """An :class:`EngineError` saying ``what`` (e.g. "the denoising loop produced NaN/Inf latents") and the
    suspects of this call for ``component`` (the engine that made them: ``unet`` or ``vae_decoder``)."""
    state = pipe._state
    suspects = []
    if component == "unet" and state is not None:
        suspects += _lora(state) + _embeddings(pipe, state)
    if state is not None:
        given = [f"`{n}`" for n in _ARRAYS if state.arguments.get(n) is not None]
        if given:
            suspects.append(f"the {', '.join(given)} passed to this call (finite, but large values overflow)")
        if state.arguments.get("callback_on_step_end") is not None or state.callback is not None:
            suspects.append("the latents the call's callback returns (check what it puts in `latents`)")
    elif component == "vae_decoder":
        suspects.append("the latents passed to decode_latents (finite, but large values overflow)")
    precision = _precision(pipe, component)
    if precision == "fp16":
        fix = "--vae-fp32 (or --precision fp32)" if component.startswith("vae") else "--precision fp32"
        suspects.append(f"the fp16 {component} engine overflowing: rebuild with build-engine {fix}")
    if not suspects:
        suspects.append(
            f"nothing given to this call explains them and the {component} engine is {precision}: its files or "
            f"the per-machine cache may be damaged; check with sdrt inspect {pipe.bundle.path} --verify, or "
            "rebuild the bundle with build-engine --force"
        )
    return EngineError(f"{what}; suspects: " + "; ".join(suspects))


def _lora(state: Any) -> list[str]:
    snapshot = state.lora
    lora = getattr(snapshot, "state", None)
    if lora is None:
        return []
    if lora.fused is not None:
        names = ", ".join(f"{name} at {weight:g}" for name, _, weight in lora.fused)
        return [
            f"the LoRA fused at run time ({names}): its weights or alpha may be too large; pipe.unfuse_lora()"
        ]
    if not lora.active or not lora.enabled:
        return []
    scale = (state.cross_attention_kwargs or {}).get("scale", 1.0)
    names = ", ".join(f"{name} at {weight:g}" for name, weight in zip(lora.active, lora.weights))
    return [
        f"the LoRA loaded at run time ({names}; call scale {scale:g}): its weights, alpha or scale may be too "
        "large; compare with a smaller scale or pipe.unload_lora_weights()"
    ]


def _embeddings(pipe: Any, state: Any) -> list[str]:
    """The run-time embeddings' tokens that this call's prompts hold."""
    loaded: set[str] = set()
    for engine in pipe.engines.values():
        loaded.update(getattr(getattr(engine, "embedding_table", None), "tokens", None) or ())
    texts = []
    for name in _PROMPTS:
        value = state.arguments.get(name)
        texts += [value] if isinstance(value, str) else [v for v in value or () if isinstance(v, str)]
    used = sorted(t for t in loaded if any(t in text for text in texts))
    if not used:
        return []
    return [
        f"the textual-inversion embedding(s) {', '.join(used)} in the prompt (loaded at run time): try the "
        "prompt without them, or pipe.unload_textual_inversion()"
    ]


def _precision(pipe: Any, component: str) -> str:
    record = pipe.manifest.components.get(component)
    return str(getattr(record, "precision", "fp32"))
