"""The routes of jobs (``jobs.py``): A1111's ``/sdapi/v1/progress``, ``/interrupt``, ``/skip`` and its web
page's ``/internal/progress``; OpenAI's streamed generations are in ``openai_stream.py``.

A1111's routes speak of "the current job"; here several may run, so each also takes an ``id_task`` query
parameter (the job's ``force_task_id``, else its request id, the ``x-request-id`` header): progress of an
id that no job has is a 404; without one it is the most recently started job's (idle when none runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from .fields import RequestError
from .progress import (
    InternalProgressRequest,
    InternalProgressResponse,
    ProgressResponse,
    internal_progress,
    progress,
)

if TYPE_CHECKING:
    from .http import Api


def job_routes(app: FastAPI, api: Api) -> None:
    @app.get("/sdapi/v1/progress", response_model=ProgressResponse, tags=["a1111"])
    async def get_progress(skip_current_image: bool = False, id_task: str | None = None) -> dict[str, Any]:
        job = await api.board.ask("get", id_task, not skip_current_image)
        if id_task is not None and job is None:
            raise RequestError(
                f"no job {id_task[:80]!r}: not queued, running or recently finished here (a job's id is its "
                "force_task_id, else its x-request-id)",
                field="id_task",
                status=404,
            )
        return progress(job, skip_current_image)

    @app.post("/internal/progress", response_model=InternalProgressResponse, tags=["a1111"])
    async def post_internal_progress(body: InternalProgressRequest) -> dict[str, Any]:
        job = await api.board.ask("get", body.id_task, body.live_preview) if body.id_task else None
        return internal_progress(job, body.id_live_preview, body.live_preview)

    @app.post("/sdapi/v1/interrupt", tags=["a1111"])
    async def interrupt(id_task: str | None = None) -> dict[str, Any]:
        """Stop the job (every running job without ``id_task``): it answers the images made so far, the
        one being sampled decoded from its current latents."""
        await api.board.ask("interrupt", id_task)
        return {}

    @app.post("/sdapi/v1/skip", tags=["a1111"])
    async def skip(id_task: str | None = None) -> dict[str, Any]:
        """End the job's current pipeline call early, keeping its image (every running job's without
        ``id_task``); its next calls (``n_iter``) run."""
        await api.board.ask("skip", id_task)
        return {}
