"""The ingress deployment: a FastAPI app (A1111's and OpenAI's routes, OpenAPI page at ``/docs``) under Ray
Serve, with ``guard.py`` around it (request id, authentication, body cap, logs, JSON errors).

``Api`` holds the served catalogue and calls the model deployments; ``make_app(api)`` is its FastAPI app,
built on the replica (``__serve_build_asgi_app__``, ``serve.ingress``'s late-bound form) because the body
cap and credentials are the application's arguments. Nothing a request says is used as a path.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from . import a1111, openai_images
from .application import APP_NAME
from .auth import Auth
from .catalog import Catalog, served_model
from .fields import Limits, RequestError, check_plain
from .guard import request_id
from .jobs import Board
from .loras import LoraLibrary
from .requests import Job, JobResult
from .schemas import (
    ImageGenerateParams,
    Options,
    StableDiffusionProcessingImg2Img,
    StableDiffusionProcessingTxt2Img,
)


class Api:
    def __init__(
        self,
        bundles: list[str],
        handles: dict[str, Any],
        limits: dict[str, Any],
        auth: dict[str, Any],
        lora_dir: str | None = None,
    ):
        from .loopback import keep_on_loopback

        keep_on_loopback()
        self.catalog = Catalog([served_model(path) for path in bundles])
        self.handles = handles
        self.limits = Limits(**limits)
        self.auth = Auth.from_options(**auth)
        self.active = self.catalog.default
        self.options: dict[str, Any] = {}
        self.board = Board(APP_NAME)
        self.loras = LoraLibrary(lora_dir)

    def __serve_build_asgi_app__(self) -> Any:
        from .app import make_app

        return make_app(self)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "models": list(self.catalog.models)}

    def get_options(self) -> dict[str, Any]:
        model = self.catalog.models[self.active]
        return {**self.options, "sd_model_checkpoint": model.title, "sd_checkpoint_hash": model.sha256}

    def set_options(self, body: Options) -> None:
        check_plain(body.model_extra)
        if body.sd_model_checkpoint is not None:
            self.active = self.catalog.get(body.sd_model_checkpoint, field="sd_model_checkpoint").name
        self.options.update(body.model_extra or {})

    async def a1111(
        self, body: StableDiffusionProcessingTxt2Img | StableDiffusionProcessingImg2Img
    ) -> dict[str, Any]:
        job = self.identified(
            a1111.parse(body, self.catalog, self.active, self.limits, self.loras), body.force_task_id
        )
        result = await self._run(job)
        return a1111.answer(body, job, result, self.catalog.models[job.settings.model])

    async def embeddings(self) -> dict[str, Any]:
        """The active model's embeddings as its replica loaded them (A1111 lists the active model's)."""
        return await self.handles[self.active].embeddings_listed.remote()

    async def openai(self, body: ImageGenerateParams) -> dict[str, Any]:
        return await self.openai_job(openai_images.parse(body, self.catalog, self.limits))

    async def openai_job(self, job: Job) -> dict[str, Any]:
        return openai_images.answer(job, await self._run(job))

    async def openai_stream(self, body: ImageGenerateParams) -> Any:
        """A StreamingResponse of ``openai_stream.image_events`` (the request checked before it starts)."""
        from starlette.responses import StreamingResponse

        from .openai_stream import image_events

        partial = body.partial_images or 0
        job = self.identified(openai_images.parse(body, self.catalog, self.limits), previews=partial)
        return StreamingResponse(image_events(self, job, partial), media_type="text/event-stream")

    def identified(self, job: Job, job_id: str | None = None, previews: int | None = None) -> Job:
        """The job with this request's id, its job id (``job_id``, else the request id) and how often it
        previews: ``previews`` evenly spread over its steps (OpenAI's ``partial_images``), else every
        A1111's option ``show_progress_every_n_steps`` (10; off with ``live_previews_enable: false``)."""
        if previews is not None:
            every = job.settings.steps // (previews + 1) if previews else 0
        elif self.options.get("live_previews_enable", True) is False:
            every = 0
        else:
            every = self.options.get("show_progress_every_n_steps", 10)
            every = every if isinstance(every, int) and every > 0 else 0
        rid = request_id.get()
        return dataclasses.replace(job, request_id=rid, job_id=job_id or rid, preview_every=every)

    async def _run(self, job: Job) -> JobResult:
        """The job's result from its model's deployment: 503 if the replica died, 504 past the timeout."""
        if not job.job_id:
            job = self.identified(job)
        self.board.tell("queue", job.job_id, job.settings.model)
        try:
            return await self._answer(job)
        finally:
            self.board.tell("finish", job.job_id)

    async def _answer(self, job: Job) -> JobResult:
        from ray import exceptions

        response = self.handles[job.settings.model].generate.remote(job)
        try:
            result = await asyncio.wait_for(_resolved(response), self.limits.timeout_s)
        except asyncio.TimeoutError as error:
            response.cancel()
            raise RequestError(
                f"no answer from model {job.settings.model} in {self.limits.timeout_s:.0f} s", status=504
            ) from error
        except (exceptions.RayActorError, exceptions.ActorUnavailableError) as error:
            raise RequestError(
                f"the replica running model {job.settings.model} stopped during the request; retry it "
                f"({type(error).__name__})",
                status=503,
            ) from error
        if result.error and result.status < 500:
            raise RequestError(result.error, status=result.status)
        if result.error:  # the replica logged it under this id; its text may hold paths
            raise RequestError(
                f"internal error (request id {job.request_id}); the server's log has the details", status=500
            )
        return result


async def _resolved(response: Any) -> Any:
    return await response
