"""OpenAI's streamed image generation (``stream: true``): server-sent events as its images API sends them.

``partial_images`` (0-3) previews come as ``image_generation.partial_image`` events (``b64_json``,
``partial_image_index``), then one ``image_generation.completed`` event per image; the fields are those
of the ``openai`` package's ``ImageGenPartialImageEvent`` / ``ImageGenCompletedEvent``. The previews are
the job's (``jobs.py``), made evenly over its steps; as OpenAI says of its own, fewer may come when the
image is quick. An error after the stream began is an ``error`` event (the client raises it); a client
that goes away interrupts its job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .fields import RequestError
from .guard import error_body, internal_error
from .images import b64
from .requests import Job

if TYPE_CHECKING:
    from .http import Api

log = logging.getLogger("ray.serve")
POLL_S = 0.05


def event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


async def image_events(api: Api, job: Job, partial_images: int) -> AsyncIterator[bytes]:
    """The events of one streamed generation (``job`` already identified, with its previews)."""
    settings = job.settings
    common = {
        "background": "opaque",
        "output_format": "png",
        "quality": "auto",
        "size": f"{settings.width}x{settings.height}",
    }
    task = asyncio.ensure_future(api._run(job))
    sent, seen = 0, 0
    try:
        while not task.done():
            await asyncio.wait([task], timeout=POLL_S)
            if sent >= partial_images or task.done():
                continue
            state = await api.board.ask("get", job.job_id)
            if state and state["preview"] is not None and state["preview_count"] > seen:
                seen = state["preview_count"]
                data = {**common, "b64_json": b64(state["preview"]), "partial_image_index": sent}
                yield event("image_generation.partial_image", {**data, "created_at": int(time.time())})
                sent += 1
        result = task.result()
    except RequestError as error:
        yield event("error", error_body("/v1/", error.status, str(error), error.field))
        return
    except Exception:  # noqa: BLE001 - a bug: its traceback to the log, the request id to the client
        log.exception("sdrt streamed request %s failed", job.request_id)
        yield event("error", internal_error("/v1/"))
        return
    finally:
        if not task.done():  # the client went away: stop its job
            api.board.tell("interrupt", job.job_id)
    usage = {"input_tokens": 0, "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}}
    usage.update(output_tokens=0, total_tokens=0)
    for png in result.images:
        data = {**common, "b64_json": b64(png), "created_at": int(time.time()), "usage": usage}
        yield event("image_generation.completed", data)
