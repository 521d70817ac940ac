"""Jobs grouped by settings and cut into pipeline calls: the torch-free part of dynamic batching.

Requests that arrived in one batch window run together only when their ``Settings`` are equal (their LoRA
sets included, so a request never runs another's LoRA); each
group's images are cut into pipeline calls of at most ``max_rows`` prompts (the bundle's batch range
and the server's ``--max-batch-size``), each image with its own seed's generator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdrt.runtime.errors import InputError

from .images import png_bytes
from .requests import IMG2IMG, INPAINT, TXT2IMG, Job, JobResult, Row, Settings

log = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class Call:
    """One pipeline call: rows of several jobs with equal settings."""

    settings: Settings
    rows: tuple[Row, ...]
    owners: tuple[int, ...]  # the job index of each row


def plan_calls(jobs: list[Job], max_rows: int) -> list[Call]:
    groups: dict[Settings, list[tuple[int, Row]]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.settings, []).extend((index, row) for row in job.rows)
    calls = []
    for settings, rows in groups.items():
        for start in range(0, len(rows), max_rows):
            chunk = rows[start : start + max_rows]
            calls.append(Call(settings, tuple(r for _, r in chunk), tuple(i for i, _ in chunk)))
    return calls


def call_arguments(call: Call, takes_negative_prompt: bool = True) -> dict[str, Any]:
    """The pipeline's keyword arguments (diffusers' names) for one call; a pipeline taking no negative prompt
    (latent consistency models) gets none where every row's is empty, and refuses one that is not."""
    s, rows = call.settings, call.rows
    kwargs: dict[str, Any] = {
        "prompt": [r.prompt for r in rows],
        "negative_prompt": [r.negative_prompt for r in rows],
        "num_inference_steps": s.steps,
        "guidance_scale": s.guidance_scale,
        "generator": [r.seed for r in rows],
    }
    if s.prompt_syntax is not None:
        kwargs["prompt_syntax"] = s.prompt_syntax
    if not takes_negative_prompt and not any(kwargs["negative_prompt"]):
        del kwargs["negative_prompt"]
    if s.mode != IMG2IMG:
        kwargs.update(height=s.height, width=s.width)
    if s.mode != TXT2IMG:
        kwargs["image"] = [r.image for r in rows]
    if s.strength is not None:
        kwargs["strength"] = s.strength
    if s.image_guidance_scale is not None:  # InstructPix2Pix: the image's guidance, no strength
        kwargs["image_guidance_scale"] = s.image_guidance_scale
    if s.mode == INPAINT:
        kwargs["mask_image"] = [r.mask for r in rows]
    if s.controlnets:
        kwargs.update(_control_arguments(call))
    return kwargs


def _control_arguments(call: Call) -> dict[str, Any]:
    """diffusers' ControlNet arguments: the control images (``image`` for text-to-image, ``control_image``
    beside the init image; with several ControlNets one list per prompt, as diffusers transposes them),
    each ControlNet's scale and guidance window."""
    uses, rows = call.settings.controlnets, call.rows
    many = len(uses) > 1
    images = [list(r.control) if many else r.control[0] for r in rows]
    return {
        "image" if call.settings.mode == TXT2IMG else "control_image": images,
        "controlnet_conditioning_scale": [u.weight for u in uses] if many else uses[0].weight,
        "control_guidance_start": [u.start for u in uses] if many else uses[0].start,
        "control_guidance_end": [u.end for u in uses] if many else uses[0].end,
        "height": call.settings.height,
        "width": call.settings.width,
    }


def run_jobs(
    jobs: list[Job],
    max_rows: int,
    run_call: Callable[[Call], Any],
    keep: Callable[[Call], Call | None] | None = None,
) -> list[JobResult]:
    """Every job's PNGs, in order; ``run_call`` runs one Call and returns the pipeline's output (or its PIL
    images; the output's ``nsfw_content_detected`` goes into each job's result); ``keep`` (called
    just before each call) drops rows of it (those of interrupted jobs), or all of it (None).

    A call that fails fails only the jobs in it (their result carries the error)."""
    results = [JobResult([], 0, 0, 0.0) for _ in jobs]
    start = time.perf_counter()
    for planned in plan_calls(jobs, max_rows):
        call = keep(planned) if keep is not None else planned
        if call is None:
            continue
        try:
            output = run_call(call)
        except Exception as error:  # noqa: BLE001 - handed to the caller of each job in the call
            if not isinstance(error, InputError):  # a bug: its traceback here, a request id to the client
                log.exception(
                    "sdrt call failed for requests %s",
                    ", ".join(jobs[i].request_id for i in set(call.owners)),
                )
            for index in set(call.owners):
                results[index].error = f"{type(error).__name__}: {error}"
                results[index].status = 400 if isinstance(error, InputError) else 500
            continue
        images = getattr(output, "images", output)  # a pipeline output, or its images
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(images)
        for index, image, flagged in zip(call.owners, images, flags):
            result = results[index]
            result.images.append(png_bytes(image))
            result.nsfw_content_detected.append(bool(flagged))
            result.batch_images = max(result.batch_images, len(call.rows))
            result.batch_requests = max(result.batch_requests, len(set(call.owners)))
            result.ms = (time.perf_counter() - start) * 1000
    return results
