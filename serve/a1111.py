"""AUTOMATIC1111's web API (``/sdapi/v1``): its request bodies in, its answers out.

Clients send many fields sdrt does not use (hires fix, face restoration, scripts, mask blur...): they
are accepted and ignored. The fields read are those of a plain generation; each bad one is refused by
name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

from . import fields
from .catalog import Catalog, ServedModel
from .controlnet_units import parse_units
from .fields import Limits, RequestError
from .images import decode_image, fit
from .loras import LoraLibrary
from .requests import Job, JobResult, Row, Settings
from .samplers import a1111_name, sampler_settings
from .schemas import StableDiffusionProcessingImg2Img, StableDiffusionProcessingTxt2Img

Body = StableDiffusionProcessingTxt2Img | StableDiffusionProcessingImg2Img


def active_model(body: Body, catalog: Catalog, active: str) -> ServedModel:
    """``override_settings.sd_model_checkpoint`` if the request names one, else the active model."""
    name = (body.override_settings or {}).get("sd_model_checkpoint")
    return catalog.get(name if name else active, field="sd_model_checkpoint")


def one_step_strength(strength: float, steps: int) -> float:
    """A1111 runs at least one denoising step however small ``denoising_strength`` is: the smallest
    strength that keeps one of ``steps`` (diffusers keeps ``int(steps * strength)``)."""
    if int(steps * strength) >= 1:
        return strength
    strength = 1.0 / steps
    while int(steps * strength) < 1:
        strength = math.nextafter(strength, 2.0)
    return min(strength, 1.0)


def _sampler(body: Body) -> tuple[str | None, bool]:
    """``sampler_name``, or the older ``sampler_index`` that some clients still send (errors name it)."""
    if body.sampler_name or not body.sampler_index:
        return sampler_settings(body.sampler_name, body.scheduler)
    try:
        return sampler_settings(body.sampler_index, body.scheduler)
    except RequestError as error:
        if error.field == "sampler_name":
            error.field = "sampler_index"
        raise


def _settings(body: Body, model: ServedModel, mode: str, limits: Limits) -> Settings:
    model.check_mode(mode)
    default_h, default_w = model.default_size
    width, height = body.width or default_w, body.height or default_h
    model.check_size(width, height)
    sampler, karras = _sampler(body)
    steps = fields.at_most("steps", body.steps or 20, limits.max_steps)
    strength, image_guidance = _image_settings(body, model, mode, steps)
    return Settings(
        model=model.name,
        mode=mode,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=7.0 if body.cfg_scale is None else body.cfg_scale,
        sampler=sampler,
        karras=karras,
        strength=strength,
        image_guidance_scale=image_guidance,
    )


def _image_settings(
    body: Body, model: ServedModel, mode: str, steps: int
) -> tuple[float | None, float | None]:
    """(strength, image_guidance_scale): an InstructPix2Pix model's img2img takes ``image_cfg_scale`` (A1111's
    default 1.5) and, as A1111, ignores ``denoising_strength``; other img2img and inpaint take the strength."""
    if not isinstance(body, StableDiffusionProcessingImg2Img):
        return None, None
    if model.edits and mode == "img2img":
        return None, 1.5 if body.image_cfg_scale is None else body.image_cfg_scale
    strength = 0.75 if body.denoising_strength is None else body.denoising_strength
    if strength == 0:
        raise RequestError(
            "denoising_strength must be above 0 (0 would return the picture)", field="denoising_strength"
        )
    return one_step_strength(strength, steps), None


def _count(body: Body, limits: Limits) -> tuple[int, int]:
    batch = fields.at_most("batch_size", body.batch_size or 1, limits.max_images)
    n_iter = fields.at_most("n_iter", body.n_iter or 1, limits.max_images)
    if batch * n_iter > limits.max_images:
        raise RequestError(
            f"batch_size x n_iter = {batch * n_iter} images; this server makes at most {limits.max_images} per request",
            field="batch_size",
        )
    return batch, n_iter


def _pictures(
    body: StableDiffusionProcessingImg2Img, settings: Settings, batch: int
) -> tuple[list[Any], Any]:
    """The init images (one, or one per batch row) and the mask (or None), at the request's size."""
    images = body.init_images
    if not images or len(images) not in (1, batch):
        raise RequestError(
            f"init_images must be a list of 1 or batch_size ({batch}) base64 images", field="init_images"
        )
    size = (settings.width, settings.height)
    pictures = [fit(decode_image(v, f"init_images[{i}]", "RGB"), *size) for i, v in enumerate(images)]
    if body.mask is None:
        return pictures, None
    mask = fit(decode_image(body.mask, "mask", "L"), *size)
    if body.inpainting_mask_invert:
        from PIL import ImageOps

        mask = ImageOps.invert(mask)
    return pictures, mask


def parse(body: Body, catalog: Catalog, active: str, limits: Limits, loras: LoraLibrary | None = None) -> Job:
    """A ``/sdapi/v1/txt2img`` or ``/img2img`` body as a Job (every field checked before any work): the
    prompt in A1111's syntax, its ``<lora:NAME:WEIGHT>`` tags taken out and resolved against ``loras``."""
    fields.check_plain(body.model_extra)
    fields.check_plain({"override_settings": body.override_settings})
    model = active_model(body, catalog, active)
    mode = "txt2img"
    if isinstance(body, StableDiffusionProcessingImg2Img):
        mode = "img2img" if body.mask is None else "inpaint"
    settings = _settings(body, model, mode, limits)
    prompt = fields.text("prompt", body.prompt, limits.max_prompt_chars)
    negative = fields.text("negative_prompt", body.negative_prompt, limits.max_prompt_chars)
    prompt, uses = (loras or LoraLibrary(None)).take(prompt)
    controls, control_images = parse_units(body.model_extra, model.controlnets, model.name)
    if controls:
        model.check_control(mode)
    settings = dataclasses.replace(settings, loras=uses, prompt_syntax="a1111", controlnets=controls)
    batch, n_iter = _count(body, limits)
    seed = -1 if body.seed is None else body.seed
    all_seeds = fields.seeds(seed, batch * n_iter)
    pictures, mask = ([None], None)
    if isinstance(body, StableDiffusionProcessingImg2Img):
        pictures, mask = _pictures(body, settings, batch)
    rows = tuple(
        Row(prompt, negative, seed, pictures[i % batch % len(pictures)], mask, control_images)
        for i, seed in enumerate(all_seeds)
    )
    return Job(settings, rows)


def answer(body: Body, job: Job, result: JobResult, model: ServedModel) -> dict[str, Any]:
    """A1111's answer: base64 PNGs, the parameters as read, and ``info`` (a JSON string)."""
    from .images import b64

    s, rows = job.settings, job.rows
    sampler = (s.sampler or a1111_name(model.scheduler)) + (" Karras" if s.karras else "")
    parameters = body.model_dump(exclude={"init_images", "mask", "alwayson_scripts"})
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
        "image_cfg_scale": s.image_guidance_scale,  # InstructPix2Pix models' (None for others)
        "sd_model_name": model.name,
        "sd_model_hash": model.sha256[:10],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
        "infotexts": infotexts,
        "sdrt": {
            "batch_images": result.batch_images,
            "batch_requests": result.batch_requests,
            "ms": result.ms,
            "nsfw_content_detected": result.nsfw_content_detected,  # the safety checker's flags (black)
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
