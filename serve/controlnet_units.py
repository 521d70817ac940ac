"""sd-webui-controlnet's units (``alwayson_scripts.controlnet.args``) as the ControlNets of a request.

Each enabled unit names one of the bundle's ControlNets (``model``), brings a preprocessed control image
(``image``; preprocessors are not run here, so ``module`` must be ``"none"``), a ``weight`` and the
``guidance_start``/``guidance_end`` window: diffusers' ``controlnet_conditioning_scale`` and
``control_guidance_start``/``_end``, which mean the same. Only ``control_mode`` "Balanced" is taken:
sd-webui-controlnet's other modes scale residuals in ways diffusers' ``guess_mode`` does not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import RequestError
from .images import decode_image

#: sd-webui-controlnet's ``/controlnet/version`` (``external_code.get_api_version()``: 3 since its
#: preprocessor registry, v1.1.44x; 2 before and in Forge)
EXTENSION_VERSION = 3
BALANCED = ("balanced", "0")


@dataclass(frozen=True)
class ControlUse:
    """One unit's settings (part of ``Settings``: requests share batches only with equal ones)."""

    name: str  # the bundle's ControlNet component
    weight: float
    start: float
    end: float


def units(body_extra: dict[str, Any] | None) -> list[tuple[int, dict[str, Any]]]:
    """The enabled units of ``alwayson_scripts.controlnet.args``, with their index."""
    scripts = (body_extra or {}).get("alwayson_scripts") or {}
    if not isinstance(scripts, dict):
        raise RequestError("alwayson_scripts must be an object", field="alwayson_scripts")
    script = scripts.get("controlnet") or scripts.get("ControlNet")
    if script is None:
        return []
    args = script.get("args") if isinstance(script, dict) else None
    if not isinstance(args, list):
        raise RequestError(
            "alwayson_scripts.controlnet.args must be a list of units",
            field="alwayson_scripts.controlnet.args",
        )
    found = []
    for index, unit in enumerate(args):
        if not isinstance(unit, dict):
            raise RequestError("a ControlNet unit must be an object", field=_field(index))
        if unit.get("enabled", True):
            found.append((index, unit))
    return found


def parse_units(
    body_extra: dict[str, Any] | None, controlnets: tuple[str, ...], model: str
) -> tuple[tuple[ControlUse, ...], tuple[Any, ...]]:
    """(settings, control images) of the request's enabled units, each checked against the bundle's
    ControlNets; ((), ()) for a request without units."""
    found = units(body_extra)
    if found and not controlnets:
        raise RequestError(
            f"model {model} has no ControlNet; send ControlNet units to a bundle built with build-engine "
            "--controlnet",
            field=_field(found[0][0]),
        )
    uses, images = [], []
    for index, unit in found:
        use, image = _unit(index, unit, controlnets)
        uses.append(use)
        images.append(image)
    names = [u.name for u in uses]
    if len(set(names)) != len(names):
        raise RequestError("two units name the same ControlNet model", field=_field(found[-1][0], "model"))
    return tuple(uses), tuple(images)


def _unit(index: int, unit: dict[str, Any], controlnets: tuple[str, ...]) -> tuple[ControlUse, Any]:
    module = unit.get("module", "none")
    if module not in (None, "none", "None"):
        raise RequestError(
            f"module {module!r}: preprocessors are not run on this server; send a preprocessed control "
            "image with module 'none'",
            field=_field(index, "module"),
        )
    mode = str(unit.get("control_mode", "Balanced")).lower()
    if mode not in BALANCED:
        raise RequestError(
            f"control_mode {unit.get('control_mode')!r}: only 'Balanced' (0) is served (the other modes "
            "have no exact diffusers equivalent)",
            field=_field(index, "control_mode"),
        )
    name = _model(index, unit.get("model"), controlnets)
    weight = _number(index, unit, "weight", 1.0, (0.0, 2.0))
    start = _number(index, unit, "guidance_start", 0.0, (0.0, 1.0))
    end = _number(index, unit, "guidance_end", 1.0, (0.0, 1.0))
    if start >= end:
        raise RequestError("guidance_start must be below guidance_end", field=_field(index, "guidance_start"))
    image = unit.get("image", unit.get("input_image"))
    if isinstance(image, dict):  # the extension's {"image": ..., "mask": ...} form
        image = image.get("image")
    picture = decode_image(image, _field(index, "image"), "RGB")
    return ControlUse(name, weight, start, end), picture


def _model(index: int, value: Any, controlnets: tuple[str, ...]) -> str:
    key = value.split(" [", 1)[0].strip() if isinstance(value, str) else None
    if key in controlnets:
        return str(key)
    raise RequestError(
        f"model {value!r} is not a ControlNet of this bundle; its ControlNets: {', '.join(controlnets)}",
        field=_field(index, "model"),
    )


def _number(index: int, unit: dict[str, Any], key: str, default: float, bounds: tuple[float, float]) -> float:
    value = unit.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not bounds[0] <= value <= bounds[1]:
        raise RequestError(
            f"{key} must be a number in {bounds[0]:g}..{bounds[1]:g}, got {value!r}", field=_field(index, key)
        )
    return float(value)


def _field(index: int, key: str | None = None) -> str:
    return f"alwayson_scripts.controlnet.args[{index}]" + (f".{key}" if key else "")
