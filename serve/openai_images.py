"""OpenAI's images API: ``POST /v1/images/generations`` and ``GET /v1/models``.

Images come back as ``b64_json`` (the default here): nothing is stored, so ``response_format: "url"`` is
refused. Beside OpenAI's fields a request may carry sdrt's own (``seed``, ``negative_prompt``,
``steps``, ``guidance_scale``, ``sampler_name``), as clients send them with ``extra_body``.
"""

from __future__ import annotations

import time
from typing import Any

from . import fields
from .catalog import Catalog
from .fields import Limits, RequestError
from .images import b64
from .requests import Job, JobResult, Row, Settings
from .samplers import sampler_settings

MAX_SEED = 2**32 - 1


def _size(value: Any, default: tuple[int, int]) -> tuple[int, int]:
    """(width, height) from OpenAI's "WxH" (or "auto": the model's default size)."""
    if value in (None, "auto"):
        return default[1], default[0]
    if isinstance(value, str):
        width, x, height = value.lower().partition("x")
        if x and width.isdigit() and height.isdigit():
            return int(width), int(height)
    raise RequestError(f"size must be 'WIDTHxHEIGHT' such as '512x512', got {value!r}", field="size")


def parse(body: dict[str, Any], catalog: Catalog, limits: Limits) -> Job:
    """A generations request as a Job (every field checked before any work)."""
    model = catalog.get(body.get("model") or catalog.default)
    if body.get("response_format", "b64_json") not in ("b64_json", None):
        raise RequestError(
            "response_format 'url' is not served: this server stores no images; ask for 'b64_json'",
            field="response_format",
        )
    prompt = fields.text(body, "prompt", "", limits.max_prompt_chars)
    if not prompt:
        raise RequestError("prompt is required", field="prompt")
    n = fields.integer(body, "n", 1, 1, limits.max_images)
    width, height = _size(body.get("size"), model.default_size)
    model.check_mode("txt2img")
    model.check_size(width, height)
    sampler, karras = sampler_settings(body.get("sampler_name"), body.get("scheduler"))
    settings = Settings(
        model=model.name,
        mode="txt2img",
        width=width,
        height=height,
        steps=fields.integer(body, "steps", 20, 1, limits.max_steps),
        guidance_scale=fields.number(body, "guidance_scale", 7.5, 0.0, 100.0),
        sampler=sampler,
        karras=karras,
    )
    negative = fields.text(body, "negative_prompt", "", limits.max_prompt_chars)
    seeds = fields.seeds(fields.integer(body, "seed", -1, -1, MAX_SEED), n)
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
