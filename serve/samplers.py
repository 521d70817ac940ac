"""AUTOMATIC1111's sampler names -> sdrt's schedulers, as diffusers' scheduler docs map them.

A1111 names a sampler ("DPM++ 2M") and, since 1.9, a noise schedule in a separate ``scheduler`` field
("Automatic", "Karras"); older clients say "DPM++ 2M Karras" in one name. Both spellings are read.
Samplers with no diffusers counterpart (DPM++ SDE needs torchsde, DPM++ 2S a, DPM fast, DPM adaptive)
are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import RequestError


@dataclass(frozen=True)
class Sampler:
    name: str  # A1111's
    aliases: tuple[str, ...]
    scheduler: str  # sdrt's (diffusers') class name
    config: tuple[tuple[str, Any], ...] = ()
    karras: bool = True  # whether the "Karras" schedule applies

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "aliases": list(self.aliases), "options": {}}


SAMPLERS = (
    Sampler("DPM++ 2M", ("k_dpmpp_2m",), "DPMSolverMultistepScheduler"),
    Sampler(
        "DPM++ 2M SDE",
        ("k_dpmpp_2m_sde",),
        "DPMSolverMultistepScheduler",
        (("algorithm_type", "sde-dpmsolver++"),),
    ),
    Sampler("Euler a", ("k_euler_a", "k_euler_ancestral"), "EulerAncestralDiscreteScheduler", karras=False),
    Sampler("Euler", ("k_euler",), "EulerDiscreteScheduler"),
    Sampler("LMS", ("k_lms",), "LMSDiscreteScheduler"),
    Sampler("Heun", ("k_heun",), "HeunDiscreteScheduler"),
    Sampler("DPM2", ("k_dpm_2",), "KDPM2DiscreteScheduler"),
    Sampler("DPM2 a", ("k_dpm_2_a",), "KDPM2AncestralDiscreteScheduler"),
    Sampler("DDIM", ("ddim",), "DDIMScheduler", karras=False),
    Sampler("PLMS", ("plms",), "PNDMScheduler", (("skip_prk_steps", True),), karras=False),
    Sampler("UniPC", ("unipc",), "UniPCMultistepScheduler"),
    Sampler("LCM", ("k_lcm",), "LCMScheduler", karras=False),
)
SCHEDULES = ("automatic", "karras")
_BY_NAME = {key.lower(): s for s in SAMPLERS for key in (s.name, *s.aliases)}


def sampler_settings(sampler_name: str | None, schedule: str | None) -> tuple[str | None, bool]:
    """(A1111's sampler name or None for the model's own scheduler, whether Karras sigmas are used)."""
    karras = False
    if schedule is not None:
        if not isinstance(schedule, str) or schedule.lower() not in SCHEDULES:
            raise RequestError(
                f"scheduler {schedule!r} is not served; use one of {', '.join(SCHEDULES)}", field="scheduler"
            )
        karras = schedule.lower() == "karras"
    if sampler_name in (None, ""):
        if karras:
            raise RequestError("scheduler 'karras' needs a sampler_name", field="scheduler")
        return None, False
    if not isinstance(sampler_name, str):
        raise RequestError("sampler_name must be a string", field="sampler_name")
    name = sampler_name.strip()
    if name.lower().endswith(" karras"):
        name, karras = name[: -len(" karras")], True
    sampler = _BY_NAME.get(name.lower())
    if sampler is None:
        raise RequestError(
            f"sampler_name {sampler_name!r} is not served; this server has: {', '.join(s.name for s in SAMPLERS)}"
            " (each also with ' Karras' where it applies)",
            field="sampler_name",
        )
    if karras and not sampler.karras:
        raise RequestError(f"{sampler.name} has no Karras schedule; drop 'Karras'", field="sampler_name")
    return sampler.name, karras


def make_scheduler(sampler_name: str, karras: bool, model_config: dict[str, Any]) -> Any:
    """The sdrt scheduler for an A1111 sampler, from the model's own scheduler config."""
    from sdrt.schedulers import get_scheduler_class

    sampler = _BY_NAME[sampler_name.lower()]
    overrides = dict(sampler.config)
    if karras:
        overrides["use_karras_sigmas"] = True
    return get_scheduler_class(sampler.scheduler).from_config(model_config, **overrides)


def a1111_name(scheduler_class: str) -> str:
    """The A1111 name of a model's own scheduler class (its class name where A1111 has none)."""
    plain = [s for s in SAMPLERS if s.scheduler == scheduler_class and not s.config]
    return plain[0].name if plain else scheduler_class
