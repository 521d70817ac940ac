"""OpenAI's images API: ``POST /v1/images/generations`` and ``GET /v1/models``.

Images come back as ``b64_json`` (the default here): nothing is stored, so ``response_format: "url"`` is
refused. Beside OpenAI's fields a request may carry sdrt's own (``seed``, ``negative_prompt``,
``steps``, ``guidance_scale``, ``sampler_name``), as clients send them with ``extra_body``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from . import fields
from .catalog import Catalog
from .fields import Limits, RequestError
from .images import b64
from .requests import Job, JobResult, Row, Settings
from .samplers import sampler_settings
from .schemas import ImageGenerateParams


def _size(value: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """(width, height) from OpenAI's "WxH" (or "auto": the model's default size)."""
    if value in (None, "auto"):
        return default[1], default[0]
    match = re.fullmatch(r"(\d{1,5})[xX](\d{1,5})", value or "", flags=re.ASCII)
    if match:
        return int(match[1]), int(match[2])
    raise RequestError(f"size must be 'WIDTHxHEIGHT' such as '512x512', got {value[:40]!r}", field="size")


def parse(body: ImageGenerateParams, catalog: Catalog, limits: Limits) -> Job:
    """A generations request as a Job (every field checked before any work)."""
    fields.check_plain(body.model_extra)
    model = catalog.get(body.model or catalog.default)
    if body.response_format not in ("b64_json", None):
        raise RequestError(
            "response_format 'url' is not served: this server stores no images; ask for 'b64_json'",
            field="response_format",
        )
    prompt = fields.text("prompt", body.prompt, limits.max_prompt_chars)
    if not prompt:
        raise RequestError("prompt is required", field="prompt")
    n = fields.at_most("n", body.n or 1, limits.max_images)
    width, height = _size(body.size, model.default_size)
    model.check_mode("txt2img")
    model.check_size(width, height)
    sampler, karras = sampler_settings(body.sampler_name, body.scheduler)
    settings = Settings(
        model=model.name,
        mode="txt2img",
        width=width,
        height=height,
        steps=fields.at_most("steps", body.steps or 20, limits.max_steps),
        guidance_scale=7.5 if body.guidance_scale is None else body.guidance_scale,
        sampler=sampler,
        karras=karras,
    )
    negative = fields.text("negative_prompt", body.negative_prompt, limits.max_prompt_chars)
    seeds = fields.seeds(-1 if body.seed is None else body.seed, n)
    return Job(settings, tuple(Row(prompt, negative, seed) for seed in seeds))


def answer(job: Job, result: JobResult) -> dict[str, Any]:
    return {
        "created": int(time.time()),
        "data": [{"b64_json": b64(png), "revised_prompt": job.rows[0].prompt} for png in result.images],
    }


def models(catalog: Catalog) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "sdrt"} for name in catalog.models
        ],
    }
