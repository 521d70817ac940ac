"""The pipelines' argument checks, by diffusers' argument names: a clear error or the right result, never
an image of silent junk (a step count of 0, an infinite guidance scale, NaN latents...).

``check_arguments`` runs before every pipeline call (``call_state.pipeline_call``) over the call's bound
arguments: each name in ``CHECKS`` has one check, which raises :class:`InputTypeError` (wrong type) or
:class:`InputError` (out of range, or an option sdrt does not run), naming the argument and the fix. Checks
that need the images or the bundle's sizes stay where those are read (``images.py``, ``check_size``).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError, InputTypeError

from .step_cache import cache_settings
from .torch_interop import torch_module
from .weighted_prompts import check_syntax

Check = Callable[[str, Any, dict[str, Any], Any, Any], None]  # (name, value, arguments, pipe, state)


def integer(name: str, value: Any, fix: str) -> int:
    """``value`` as an int: Python or NumPy integers; a bool, a float (even 10.0) or a string is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}; {fix}")
    return int(value)


def real(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float (ints and NumPy numbers too; bools and strings refused), in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"`{name}` must be finite, got {value!r}; pass a real number")
    if (low is not None and number < low) or (high is not None and number > high):
        raise InputError(f"`{name}` must be in [{low}, {high}], got {value!r}")
    return number


def _steps(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if arguments.get("timesteps") is not None or arguments.get("sigmas") is not None:
        return  # diffusers ignores the step count when custom timesteps or sigmas are given
    steps = integer(name, value, "pass a whole number of steps, e.g. num_inference_steps=30")
    config = getattr(state.scheduler, "config", None)
    most = getattr(config, "num_train_timesteps", None) if config is not None else None
    if steps < 1 or (most is not None and steps > most):
        upper = f" and at most the scheduler's num_train_timesteps ({most})" if most is not None else ""
        raise InputError(f"`num_inference_steps` must be at least 1{upper}, got {steps}")


def _schedule(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value is None:
        return
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) == 0:
        raise InputTypeError(f"`{name}` must be a non-empty list of numbers, got {value!r}")
    for item in np.asarray(value, dtype=object).reshape(-1):
        real(name, item)


def _number(low: float | None = None, high: float | None = None, optional: bool = False) -> Check:
    def check(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
        if not (optional and value is None):
            real(name, value, low, high)

    return check


def _strength(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if not 0.0 <= real(name, value) <= 1.0:  # diffusers' message
        raise InputError(f"The value of strength should in [0.0, 1.0] but is {value}")


def _count(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if integer(name, value, f"pass e.g. {name}=1") < 1:
        raise InputError(f"`{name}` must be at least 1, got {value}")


def _size(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value is not None:
        integer(name, value, f"pass pixels as an int, e.g. {name}=512")


def _finite_array(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value is None:
        return
    if hasattr(value, "__cuda_array_interface__"):
        # on the GPU (CuPy, torch CUDA) reading the values back would make the host wait for the device
        # before the denoising loop is queued: the one thing the GPU path never does. Not checked there.
        return
    if type(value).__module__.split(".")[0] == "torch":
        host = value.detach().cpu().float().numpy()
    else:
        host = value
    try:
        array = np.asarray(host, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"`{name}` must be an array of numbers, got {type(value).__name__}") from None
    if not np.isfinite(array).all():
        raise InputError(f"`{name}` has NaN or Inf values; pass finite values")


def _output_type(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value not in pipe.output_types:
        names = ", ".join(repr(t) for t in pipe.output_types)
        raise InputError(f"output_type must be one of {names}, got {value!r}")
    if value == "pt":
        torch_module("output_type='pt'")  # before any work, where torch is missing


def _clip_skip(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value is None:
        return
    skip = integer(name, value, "pass clip_skip=None")
    built = pipe.manifest.text.clip_skip if pipe.manifest.text is not None else None
    if skip != 0 and skip != built:  # clip_skip=0 selects the last hidden state in diffusers too: as None
        have = f"for clip_skip={built}" if built else "without clip_skip"
        raise InputError(
            f"clip_skip={value}: the bundle's text encoders were exported {have}; rebuild the bundle with "
            f"build-engine MODEL_DIR -o {pipe.bundle.path} --clip-skip {skip}, or pass clip_skip="
            f"{built if built else 'None'}"
        )
    state.clip_skip = skip


def _cross_attention_kwargs(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise InputTypeError(f"`cross_attention_kwargs` must be a dict or None, got {type(value).__name__}")
    extra = {k: v for k, v in (value or {}).items() if k != "scale"}
    scale = (value or {}).get("scale", 1.0)
    if extra:
        raise InputError(
            f"cross_attention_kwargs {sorted(extra)}: the exported UNet graph has its attention fixed at export "
            "and takes no cross_attention_kwargs but a LoRA 'scale'; pass None"
        )
    if hasattr(pipe, "lora_call_scale"):  # the LoRA scale of this call: diffusers' scale_lora_layers
        pipe.lora_call_scale(real("cross_attention_kwargs['scale']", scale))
    state.cross_attention_kwargs = value


def _unsupported(what: str) -> Check:
    def check(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
        if value is not None:
            raise InputError(f"`{name}`: {what}; pass None")

    return check


def _callable(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    if value is not None and not callable(value):
        raise InputTypeError(
            f"`{name}` must be a function (pipe, step, timestep, tensors) -> dict, got {value!r}"
        )


def _legacy(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    """diffusers' deprecated ``callback(step, timestep, latents)`` every ``callback_steps`` steps; sdrt's
    ``prompt_syntax="a1111"`` (A1111's prompt weights and long prompts), ``cache_interval`` / ``cache_branch``
    (step caching, ``step_cache``); any other keyword is refused (diffusers would ignore it silently)."""
    extra = dict(value or {})
    callback, steps = extra.pop("callback", None), extra.pop("callback_steps", None)
    state.prompt_syntax = check_syntax(extra.pop("prompt_syntax", None))  # sdrt's own, see weighted_prompts
    state.step_cache = cache_settings(
        extra.pop("cache_interval", None), extra.pop("cache_branch", None)
    )  # DeepCache
    if extra:
        raise InputTypeError(
            f"{type(pipe).__name__}.__call__() got unexpected keyword arguments {sorted(extra)}; see "
            f"help({type(pipe).__name__}.__call__) for the arguments sdrt takes"
        )
    for old in [n for n, v in (("callback", callback), ("callback_steps", steps)) if v is not None]:
        warnings.warn(
            f"Passing `{old}` as an input argument to `__call__` is deprecated, consider using "
            "`callback_on_step_end`",
            FutureWarning,
            stacklevel=4,
        )
    if steps is not None and (integer("callback_steps", steps, "pass e.g. callback_steps=1") < 1):
        raise InputError(f"`callback_steps` has to be a positive integer but is {steps}")
    _callable("callback", callback, arguments, pipe, state)
    state.callback, state.callback_steps = callback, 1 if steps is None else int(steps)


def _ip_adapter(name: str, value: Any, arguments: dict[str, Any], pipe: Any, state: Any) -> None:
    """IP-Adapter inputs: text-to-image pipelines (``runs_ip_adapter``) over a bundle built with one."""
    if value is None:
        return
    if not getattr(pipe, "runs_ip_adapter", False):
        raise InputError(
            f"`{name}`: sdrt's {type(pipe).__name__} runs no IP-Adapter (StableDiffusionPipeline and "
            "StableDiffusionXLPipeline do); pass None"
        )
    if not pipe.manifest.unet.ip_adapter_layers:
        raise InputError(
            f"`{name}`: {pipe.bundle.path} has no IP-Adapter; rebuild it with build-engine MODEL --ip-adapter FILE "
            "--image-encoder DIR, or pass None"
        )
    if name == "ip_adapter_image_embeds" and not isinstance(value, list):
        raise InputTypeError(f"`ip_adapter_image_embeds` has to be of type `list` but is {type(value)}")


CHECKS: dict[str, Check] = {
    "num_inference_steps": _steps,
    "timesteps": _schedule,
    "sigmas": _schedule,
    "guidance_scale": _number(),
    "guidance_rescale": _number(0.0, 1.0),
    "image_guidance_scale": _number(),  # InstructPix2Pix: below 1 turns guidance off, as in diffusers
    "eta": _number(0.0, 1.0),
    "strength": _strength,
    "denoising_start": _number(0.0, 1.0, optional=True),  # fractions of the schedule (SDXL)
    "denoising_end": _number(0.0, 1.0, optional=True),
    "aesthetic_score": _number(),
    "negative_aesthetic_score": _number(),
    "height": _size,
    "width": _size,
    "num_images_per_prompt": _count,
    "batch_size": _count,
    "latents": _finite_array,
    "prompt_embeds": _finite_array,
    "negative_prompt_embeds": _finite_array,
    "pooled_prompt_embeds": _finite_array,
    "negative_pooled_prompt_embeds": _finite_array,
    "masked_image_latents": _finite_array,
    "output_type": _output_type,
    "clip_skip": _clip_skip,
    "cross_attention_kwargs": _cross_attention_kwargs,
    "ip_adapter_image": _ip_adapter,
    "ip_adapter_image_embeds": _ip_adapter,
    "padding_mask_crop": _unsupported("sdrt does not crop around the mask; crop the image and mask yourself"),
    "callback_on_step_end": _callable,
    "kwargs": _legacy,
}


def check_arguments(pipe: Any, state: Any, arguments: dict[str, Any]) -> None:
    """Run the check of every argument ``CHECKS`` names (see the module docstring)."""
    for name, value in arguments.items():
        check = CHECKS.get(name)
        if check is not None:
            check(name, value, arguments, pipe, state)
