"""diffusers' pipeline attributes that scripts touch besides the call: ``config``, ``device``, ``dtype``,
``to(...)``, attention and VAE slicing, and the scheduler slot that refuses a diffusers (torch) scheduler.

sdrt fixes the provider when a bundle is loaded (``from_pretrained(bundle, provider=...)``) and the precision
when it is built (``build-engine --precision``): ``to(...)`` changes neither, and says so unless it asks for
what the pipeline already is. Slicing changes diffusers' memory use, not its images; an engine plans its
own memory, so those calls do nothing (a debug log).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sdrt.runtime.backends import get_backend
from sdrt.runtime.errors import InputTypeError
from sdrt.schedulers import SCHEDULER_NAMES, FrozenConfig

logger = logging.getLogger(__name__)


def check_scheduler(value: Any) -> None:
    """Refuse what cannot be the pipeline's scheduler: a diffusers scheduler, or no scheduler at all."""
    kind = type(value)
    if kind.__module__.split(".")[0] == "diffusers":
        name = kind.__name__ if kind.__name__ in SCHEDULER_NAMES else "EulerDiscreteScheduler"
        raise InputTypeError(
            f"pipe.scheduler = {kind.__name__}(...) is diffusers' (torch) scheduler; sdrt runs its own NumPy "
            f"schedulers with diffusers' names and configs: pipe.scheduler = "
            f"sdrt.schedulers.{name}.from_config(pipe.scheduler.config)"
        )
    steps = any(
        callable(getattr(value, name, None)) for name in ("step", "step_pred")
    )  # step_pred: score SDE
    if not (callable(getattr(value, "set_timesteps", None)) and steps):
        raise InputTypeError(
            f"the scheduler must be an sdrt scheduler (with set_timesteps and step), got {kind.__name__}; "
            "e.g. sdrt.schedulers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)"
        )


def _device_type(device: Any) -> str:
    return str(getattr(device, "type", device)).split(":")[0]


def _dtype_name(dtype: Any) -> str:
    if type(dtype).__module__.split(".")[0] == "torch":
        return str(dtype).removeprefix("torch.")
    return np.dtype(dtype).name


class DiffusersSurface:
    """The attributes above for one pipeline (``DiffusionPipeline``'s properties of these names delegate here)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def config(self) -> FrozenConfig:
        pipe = self.pipe
        values: dict[str, Any] = {"_class_name": type(pipe).__name__, "_name_or_path": str(pipe.bundle.path)}
        for name in pipe.parts:
            part = getattr(pipe, name)
            values[name] = (
                (None, None) if part is None else (type(part).__module__.split(".")[0], type(part).__name__)
            )
        return FrozenConfig({**values, **pipe._config_values()})

    def device(self) -> str:
        return str(get_backend(self.pipe.provider).device)

    def dtype(self) -> np.dtype:
        spec = self.pipe.unet.engine.inputs.get("sample")
        return np.dtype(spec.dtype) if spec is not None and spec.dtype is not None else np.dtype(np.float32)

    def to(self, *args: Any, **kwargs: Any) -> None:
        """Warn where ``pipe.to(...)`` asks for another device or dtype (see the module docstring)."""
        asked = [
            *args,
            *(v for k, v in kwargs.items() if k in ("device", "dtype", "torch_device", "torch_dtype")),
        ]
        different = []
        for value in asked:
            if value is None:
                continue
            is_dtype = _is_dtype(value)
            current = _dtype_name(self.dtype()) if is_dtype else self.device()
            wanted = _dtype_name(value) if is_dtype else _device_type(value)
            if wanted != current:
                different.append(f"{'dtype' if is_dtype else 'device'} {wanted} (it is {current})")
        if different:
            logger.warning(
                "pipe.to(%s) changes nothing: an sdrt pipeline's provider is fixed when it is loaded "
                "(DiffusionPipeline.from_pretrained(bundle, provider='cpu' | 'cuda' | 'tensorrt')) and its "
                "precision when the bundle is built (build-engine --precision)",
                ", ".join(different),
            )

    def slicing(self, call: str) -> None:
        """Attention or VAE slicing: the engines plan their own memory."""
        logger.debug("%s: the engines plan their own memory; nothing to do", call)


def _is_dtype(value: Any) -> bool:
    if type(value).__module__.split(".")[0] == "torch":
        return type(value).__name__ == "dtype"
    try:
        np.dtype(value)
    except TypeError:  # a device: "cpu", "cuda:0", torch.device(...)
        return False
    return True
