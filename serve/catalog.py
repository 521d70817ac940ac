"""The bundles a server serves, read from their manifests at start (no engine is loaded here).

A model is named by its bundle folder's name and looked up by that name (or A1111's title for it)
among the served ones: a name from a request is never used as a path.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrt.runtime.bundle.bundle import open_bundle
from sdrt.runtime.errors import InputError
from sdrt.runtime.families import (
    CONTROL,
    CONTROL_IMAGE_TO_IMAGE,
    CONTROL_INPAINT,
    IMAGE_TO_IMAGE,
    INPAINT,
    INSTRUCT_PIX2PIX,
    TEXT_TO_IMAGE,
    all_families,
    family,
    find_family,
)

from .fields import RequestError

#: the family tasks a server offers, as the modes its APIs name them
MODE_TASKS = {"txt2img": TEXT_TO_IMAGE, "img2img": IMAGE_TO_IMAGE, "inpaint": INPAINT}
#: the same modes with ControlNet units
CONTROL_TASKS = {"txt2img": CONTROL, "img2img": CONTROL_IMAGE_TO_IMAGE, "inpaint": CONTROL_INPAINT}
#: the modes an image-editing model (InstructPix2Pix, no plain img2img) runs as, as A1111 runs them
EDIT_TASKS = {"img2img": INSTRUCT_PIX2PIX}


def mode_task(model_type: str, mode: str) -> str:
    """The family task a mode runs for a bundle of ``model_type``: the plain one, else its edit task."""
    found = find_family(model_type)
    tasks = found.tasks if found is not None else {}
    if MODE_TASKS[mode] not in tasks and EDIT_TASKS.get(mode) in tasks and _serves(model_type, mode):
        return EDIT_TASKS[mode]
    return MODE_TASKS[mode]


def family_modes(model_type: str) -> tuple[str, ...]:
    """The modes a bundle of ``model_type`` offers: its family's tasks that a mode names."""
    found = find_family(model_type)
    tasks = found.tasks if found is not None else {}
    return tuple(mode for mode in MODE_TASKS if mode_task(model_type, mode) in tasks)


def _serves(model_type: str, mode: str) -> bool:
    """An edit pipeline takes what a replica passes: step-end callbacks (progress, interrupt) and sdrt's own
    keywords (``prompt_syntax``). SDXL InstructPix2Pix keeps diffusers' older signature, so it is not served."""
    cls = family(model_type).pipeline(EDIT_TASKS[mode])
    kinds = {p.name: p.kind for p in inspect.signature(cls.__call__).parameters.values()}
    return "callback_on_step_end" in kinds and inspect.Parameter.VAR_KEYWORD in kinds.values()


def is_edit_model(model_type: str) -> bool:
    """The img2img mode of ``model_type`` runs an edit task (InstructPix2Pix's ``image_guidance_scale``)."""
    return mode_task(model_type, "img2img") != IMAGE_TO_IMAGE


@dataclass(frozen=True)
class ServedModel:
    name: str
    path: str
    model_type: str
    modes: tuple[str, ...]
    batch: tuple[int, int]  # prompts per pipeline call
    height: tuple[int, int]
    width: tuple[int, int]
    size_multiple: int
    default_size: tuple[int, int]  # (height, width)
    scheduler: str  # the bundle's own scheduler class
    sha256: str  # of manifest.json
    controlnets: tuple[str, ...] = ()  # the bundle's ControlNet components (sd-webui-controlnet's models)
    edits: bool = False  # img2img runs InstructPix2Pix (``image_guidance_scale``, no ``strength``)

    @property
    def title(self) -> str:
        return f"{self.name} [{self.sha256[:10]}]"

    def check_size(self, width: int, height: int) -> None:
        for field, value, (low, high) in (("width", width, self.width), ("height", height, self.height)):
            if not low <= value <= high or value % self.size_multiple:
                raise RequestError(
                    f"{field}={value}: model {self.name} takes widths {self.width[0]}..{self.width[1]} and "
                    f"heights {self.height[0]}..{self.height[1]} in multiples of {self.size_multiple}",
                    field=field,
                )

    def check_control(self, mode: str) -> None:
        """ControlNet units in ``mode``: refused (naming the units) where the family has no such pipeline."""
        found = find_family(self.model_type)
        if found is None or CONTROL_TASKS[mode] not in found.tasks:
            raise RequestError(
                f"model {self.name} ({self.model_type}) takes ControlNet units in "
                f"{', '.join(m for m, t in CONTROL_TASKS.items() if found and t in found.tasks)}, not {mode}",
                field="alwayson_scripts.controlnet.args",
            )

    def check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise RequestError(
                f"model {self.name} ({self.model_type}) serves {', '.join(self.modes)}, not {mode}"
            )


def served_model(path: str | Path) -> ServedModel:
    """A bundle's serving facts, or an error naming the bundle (not a text-guided model, no folder)."""
    bundle = open_bundle(path)
    manifest = bundle.manifest
    modes = family_modes(bundle.model_type)
    if not modes:
        served = ", ".join(f.title for f in all_families() if family_modes(f.name))
        raise InputError(
            f"{path}: sdrt serve does not serve {bundle.model_type} bundles; it serves {served} models (serve "
            "this one from Python with its pipeline)"
        )
    if "vae_encoder" not in bundle.components:
        modes = tuple(m for m in modes if m == "txt2img")
    shapes = manifest.shapes
    config = json.loads((bundle.path / "scheduler" / "scheduler_config.json").read_text())
    return ServedModel(
        name=bundle.path.resolve().name,
        path=str(bundle.path.resolve()),
        model_type=bundle.model_type,
        modes=modes,
        batch=_pair(shapes.batch),
        height=_pair(shapes.height),
        width=_pair(shapes.width),
        size_multiple=max(8, shapes.size_multiple),
        default_size=_pair(manifest.default_size),
        scheduler=config.get("_class_name", ""),
        sha256=hashlib.sha256((bundle.path / "manifest.json").read_bytes()).hexdigest(),
        controlnets=tuple(manifest.controlnets or ()),
        edits="img2img" in modes and is_edit_model(bundle.model_type),
    )


class Catalog:
    """The served models by name; the first is the default (A1111's active model at start)."""

    def __init__(self, models: list[ServedModel]) -> None:
        if not models:
            raise InputError("sdrt serve needs at least one bundle")
        names = [m.name for m in models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"two bundles are named {', '.join(duplicates)} (the model name is the folder's name); "
                "rename one folder"
            )
        self.models = {m.name: m for m in models}
        self.default = models[0].name

    def get(self, name: Any, field: str = "model") -> ServedModel:
        """The model named ``name`` (its name, A1111's title, or the title's name part)."""
        if isinstance(name, str):
            key = name.split(" [", 1)[0].strip()
            for candidate in (name, key, Path(key).stem):
                if candidate in self.models:
                    return self.models[candidate]
        raise RequestError(
            f"{field} {name!r} is not served here; served models: {', '.join(self.models)}",
            field=field,
            status=404 if field == "model" else 400,
        )


def _pair(values: Any) -> tuple[int, int]:
    low, high = values
    return int(low), int(high)
