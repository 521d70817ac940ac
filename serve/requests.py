"""One HTTP request as the model deployment runs it, and what comes back.

Requests whose ``Settings`` are equal may share one pipeline call (a batch); each image keeps its own
seed, drawn from its own generator, so an image is the same whether it ran alone or in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .controlnet_units import ControlUse
from .loras import LoraUse

TXT2IMG, IMG2IMG, INPAINT = "txt2img", "img2img", "inpaint"  # A1111's modes (routes), not model types
MODES = (TXT2IMG, IMG2IMG, INPAINT)


@dataclass(frozen=True)
class Settings:
    """What must be equal for requests to run in one batch."""

    model: str
    mode: str  # one of MODES
    width: int
    height: int
    steps: int
    guidance_scale: float
    sampler: str | None  # A1111's name; None: the model's own scheduler
    karras: bool = False
    strength: float | None = None  # img2img and inpaint
    loras: tuple[LoraUse, ...] = ()  # the prompt's <lora:NAME:WEIGHT>, sorted by name
    prompt_syntax: str | None = None  # "a1111" on A1111's routes, None (diffusers' plain prompts) on OpenAI's
    controlnets: tuple[ControlUse, ...] = ()  # sd-webui-controlnet's units, in the request's order
    image_guidance_scale: float | None = None  # InstructPix2Pix's (A1111's image_cfg_scale); None: not one

    def describe(self) -> str:
        sampler = (self.sampler or "model's") + (" Karras" if self.karras else "")
        extra = "" if self.strength is None else f" strength={self.strength}"
        if self.image_guidance_scale is not None:
            extra += f" image_cfg={self.image_guidance_scale}"
        if self.loras:
            extra += " loras=" + ",".join(f"{u.name}:{u.weight:g}" for u in self.loras)
        if self.controlnets:
            extra += " controlnets=" + ",".join(f"{u.name}:{u.weight:g}" for u in self.controlnets)
        return (
            f"model={self.model} mode={self.mode} size={self.width}x{self.height} steps={self.steps} "
            f"sampler={sampler!r} cfg={self.guidance_scale}{extra}"
        )


@dataclass(frozen=True)
class Row:
    """One image to make."""

    prompt: str
    negative_prompt: str
    seed: int
    image: Any = None  # PIL image (img2img, inpaint), already at the request's size
    mask: Any = None  # PIL "L" image (inpaint)
    control: tuple[Any, ...] = ()  # PIL control images, one per ``Settings.controlnets``


@dataclass(frozen=True)
class Job:
    settings: Settings
    rows: tuple[Row, ...]
    request_id: str = ""
    job_id: str = (
        ""  # what /progress, /interrupt and /skip name it by (``jobs.py``); the request id if not set
    )
    preview_every: int = 0  # a preview every this many steps (0: none)


@dataclass
class JobResult:
    images: list[bytes]  # PNG files
    batch_images: int  # images in the pipeline call(s) this job ran in (the largest)
    batch_requests: int  # requests sharing that call
    ms: float  # from the batch's start to its end
    error: str | None = None  # the pipeline call failed (requests are checked before, so rarely)
    status: int = 200  # 400 for an input the pipeline refused, 500 for anything else
    # per image, the bundle's safety checker flagged it (and it is black): diffusers' nsfw_content_detected
    nsfw_content_detected: list[bool] = field(default_factory=list)
