"""AUTOMATIC1111's web API (``/sdapi/v1``): its request bodies in, its answers out.

Clients send many fields sdrt does not use (hires fix, face restoration, scripts, mask blur...): they
are accepted and ignored. The fields read are those of a plain generation; each bad one is refused by
name.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import fields
from .catalog import Catalog, ServedModel
from .fields import Limits, RequestError
from .images import decode_image, fit
from .requests import Job, JobResult, Row, Settings
from .samplers import a1111_name, sampler_settings

MAX_SEED = 2**32 - 1


def active_model(body: dict[str, Any], catalog: Catalog, active: str) -> ServedModel:
    """``override_settings.sd_model_checkpoint`` if the request names one, else the active model."""
    override = body.get("override_settings") or {}
    if not isinstance(override, dict):
        raise RequestError("override_settings must be an object", field="override_settings")
    name = override.get("sd_model_checkpoint")
    return catalog.get(name if name else active, field="sd_model_checkpoint")


def _settings(body: dict[str, Any], model: ServedModel, mode: str, limits: Limits) -> Settings:
    model.check_mode(mode)
    default_h, default_w = model.default_size
    width = fields.integer(body, "width", default_w, 8, 16384)
    height = fields.integer(body, "height", default_h, 8, 16384)
    model.check_size(width, height)
    sampler, karras = sampler_settings(
        body.get("sampler_name") or body.get("sampler_index"), body.get("scheduler")
    )
    strength = None
    if mode != "txt2img":
        strength = fields.number(body, "denoising_strength", 0.75, 0.0, 1.0)
        if strength == 0:
            raise RequestError(
                "denoising_strength must be above 0 (0 would return the picture)", field="denoising_strength"
            )
    return Settings(
        model=model.name,
        mode=mode,
        width=width,
        height=height,
        steps=fields.integer(body, "steps", 20, 1, limits.max_steps),
        guidance_scale=fields.number(body, "cfg_scale", 7.0, 0.0, 100.0),
        sampler=sampler,
        karras=karras,
        strength=strength,
    )


def _count(body: dict[str, Any], limits: Limits) -> tuple[int, int]:
    batch = fields.integer(body, "batch_size", 1, 1, limits.max_images)
    n_iter = fields.integer(body, "n_iter", 1, 1, limits.max_images)
    if batch * n_iter > limits.max_images:
        raise RequestError(
            f"batch_size x n_iter = {batch * n_iter} images; this server makes at most {limits.max_images} per request",
            field="batch_size",
        )
    return batch, n_iter


def _pictures(body: dict[str, Any], settings: Settings, batch: int) -> tuple[list[Any], Any]:
    """The init images (one, or one per batch row) and the mask (or None), at the request's size."""
    images = body.get("init_images")
    if not isinstance(images, list) or not images or len(images) not in (1, batch):
        raise RequestError(
            f"init_images must be a list of 1 or batch_size ({batch}) base64 images", field="init_images"
        )
    size = (settings.width, settings.height)
    pictures = [fit(decode_image(v, f"init_images[{i}]", "RGB"), *size) for i, v in enumerate(images)]
    mask = body.get("mask")
    if mask is None:
        return pictures, None
    mask = fit(decode_image(mask, "mask", "L"), *size)
    if body.get("inpainting_mask_invert"):
        from PIL import ImageOps

        mask = ImageOps.invert(mask)
    return pictures, mask


def parse(body: dict[str, Any], catalog: Catalog, active: str, limits: Limits, *, img2img: bool) -> Job:
    """A ``/sdapi/v1/txt2img`` or ``/img2img`` body as a Job (every field checked before any work)."""
    model = active_model(body, catalog, active)
    mode = "txt2img"
    if img2img:
        mode = "img2img" if body.get("mask") is None else "inpaint"
    settings = _settings(body, model, mode, limits)
    prompt = fields.text(body, "prompt", "", limits.max_prompt_chars)
    negative = fields.text(body, "negative_prompt", "", limits.max_prompt_chars)
    batch, n_iter = _count(body, limits)
    all_seeds = fields.seeds(fields.integer(body, "seed", -1, -1, MAX_SEED), batch * n_iter)
    pictures, mask = _pictures(body, settings, batch) if img2img else ([None], None)
    rows = tuple(
        Row(prompt, negative, seed, pictures[i % batch % len(pictures)], mask)
        for i, seed in enumerate(all_seeds)
    )
    return Job(settings, rows)


def answer(body: dict[str, Any], job: Job, result: JobResult, model: ServedModel) -> dict[str, Any]:
    """A1111's answer: base64 PNGs, the parameters as read, and ``info`` (a JSON string)."""
    from .images import b64

    s, rows = job.settings, job.rows
    sampler = (s.sampler or a1111_name(model.scheduler)) + (" Karras" if s.karras else "")
    parameters = {k: v for k, v in body.items() if k not in ("init_images", "mask")}
    parameters.update(
        prompt=rows[0].prompt,
        negative_prompt=rows[0].negative_prompt,
        seed=rows[0].seed,
        steps=s.steps,
        cfg_scale=s.guidance_scale,
        width=s.width,
        height=s.height,
        sampler_name=sampler,
    )
    infotexts = [
        f"{r.prompt}\nNegative prompt: {r.negative_prompt}\nSteps: {s.steps}, Sampler: {sampler}, "
        f"CFG scale: {s.guidance_scale}, Seed: {r.seed}, Size: {s.width}x{s.height}, Model hash: "
        f"{model.sha256[:10]}, Model: {model.name}"
        for r in rows
    ]
    info = {
        "prompt": rows[0].prompt,
        "all_prompts": [r.prompt for r in rows],
        "negative_prompt": rows[0].negative_prompt,
        "all_negative_prompts": [r.negative_prompt for r in rows],
        "seed": rows[0].seed,
        "all_seeds": [r.seed for r in rows],
        "subseed": -1,
        "all_subseeds": [-1] * len(rows),
        "width": s.width,
        "height": s.height,
        "sampler_name": sampler,
        "cfg_scale": s.guidance_scale,
        "steps": s.steps,
        "batch_size": len(rows),
        "denoising_strength": s.strength,
        "sd_model_name": model.name,
        "sd_model_hash": model.sha256[:10],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
        "infotexts": infotexts,
        "sdrt": {
            "batch_images": result.batch_images,
            "batch_requests": result.batch_requests,
            "ms": result.ms,
        },
    }
    return {"images": [b64(png) for png in result.images], "parameters": parameters, "info": json.dumps(info)}


def sd_models(catalog: Catalog) -> list[dict[str, Any]]:
    return [
        {
            "title": m.title,
            "model_name": m.name,
            "hash": m.sha256[:10],
            "sha256": m.sha256,
            "filename": m.path,
            "config": None,
        }
        for m in catalog.models.values()
    ]
