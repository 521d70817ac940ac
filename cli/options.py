"""Argument types the ``sdrt`` subcommands share: image sizes and scheduler names."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdrt.runtime.errors import InputError

# short names for --scheduler (the diffusers class names are accepted too)
SCHEDULER_ALIASES = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "lms": "LMSDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpm2": "KDPM2DiscreteScheduler",
    "dpm2_a": "KDPM2AncestralDiscreteScheduler",
    "dpmpp": "DPMSolverMultistepScheduler",
    "dpmpp_single": "DPMSolverSinglestepScheduler",
    "deis": "DEISMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
    "tcd": "TCDScheduler",
}


def scheduler_class_name(name: str) -> str:
    """A diffusers scheduler class name from a class name or a short alias (case-insensitive)."""
    from sdrt.schedulers import OWN_LOOP_SCHEDULERS, PIPELINE_SCHEDULER_NAMES

    key = name.strip().lower().replace("-", "_").replace("+", "p")
    if key in SCHEDULER_ALIASES:
        return SCHEDULER_ALIASES[key]
    for class_name in PIPELINE_SCHEDULER_NAMES:
        if class_name.lower() == name.strip().lower():
            return class_name
    choices = ", ".join([*SCHEDULER_ALIASES, *PIPELINE_SCHEDULER_NAMES])
    if name.strip().lower() in (n.lower() for n in OWN_LOOP_SCHEDULERS):
        raise InputError(
            f"scheduler {name!r} samples with a loop of its own (sdrt.schedulers, from Python), not in "
            f"sdrt's pipelines; choose one of {choices}"
        )
    raise InputError(f"unknown scheduler {name!r}; choose one of {choices}")


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` (width x height) or ``"512"`` -> (height, width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--size must be WxH (e.g. 768x512) or one number, got {text!r}"
        ) from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"--size must be WxH (e.g. 768x512) or one number, got {text!r}")
    return parts[1], parts[0]


def check_writable(path: Path, flag: str, *, make_parents: bool = False) -> None:
    """That a file can be written at ``path`` (the name not too long, the folder there and writable), before
    minutes of work whose result would have nowhere to go: probed by opening it, removed again if new."""
    try:
        existed = path.exists()
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except (OSError, ValueError) as error:
        raise InputError(f"{flag} {path}: cannot write there ({error}); choose another {flag}") from None
    if not existed:
        path.unlink(missing_ok=True)
