"""The ingress deployment: routes, authentication, the body cap, JSON errors, the call to a model.

Ray Serve hands each HTTP request to ``Api.__call__`` as a Starlette request. Every error is JSON: A1111
routes answer ``{"error", "detail", "field"}``, OpenAI routes ``{"error": {"message", "type", "param"}}``
(what its clients parse). Nothing a request says is used as a path.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import logging
import time
import uuid
from typing import Any

from . import a1111, openai_images
from .auth import Auth
from .catalog import Catalog, served_model
from .fields import Limits, RequestError
from .requests import Job, JobResult
from .samplers import SAMPLERS, SCHEDULES

log = logging.getLogger("ray.serve")
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("sdrt_request_id", default="")


class Api:
    def __init__(
        self, bundles: list[str], handles: dict[str, Any], limits: dict[str, Any], auth: dict[str, Any]
    ):
        self.catalog = Catalog([served_model(path) for path in bundles])
        self.handles = handles
        self.limits = Limits(**limits)
        self.auth = Auth.from_options(**auth)
        self.active = self.catalog.default
        self.options: dict[str, Any] = {}
        self.routes = {
            ("GET", "/health"): self.health,
            ("GET", "/sdapi/v1/samplers"): lambda _: [s.to_json() for s in SAMPLERS],
            ("GET", "/sdapi/v1/schedulers"): lambda _: [{"name": s, "label": s.title()} for s in SCHEDULES],
            ("GET", "/sdapi/v1/sd-models"): lambda _: a1111.sd_models(self.catalog),
            ("GET", "/sdapi/v1/options"): self.get_options,
            ("POST", "/sdapi/v1/options"): self.set_options,
            ("POST", "/sdapi/v1/txt2img"): lambda body: self.a1111(body, img2img=False),
            ("POST", "/sdapi/v1/img2img"): lambda body: self.a1111(body, img2img=True),
            ("GET", "/v1/models"): lambda _: openai_images.models(self.catalog),
            ("POST", "/v1/images/generations"): self.openai,
        }

    async def __call__(self, request: Any) -> Any:
        start, request_id = time.perf_counter(), uuid.uuid4().hex[:12]
        path = request.url.path.rstrip("/") or "/"
        _request_id.set(request_id)
        try:
            status, content = 200, await self._answer(request, path)
        except RequestError as error:
            status, content = error.status, _error_body(path, error.status, str(error), error.field)
        except Exception as error:  # noqa: BLE001 - a bug: answered 500, logged with its traceback
            log.exception("sdrt request %s %s failed", request_id, path)
            status, content = (
                500,
                _error_body(path, 500, f"internal error: {type(error).__name__}: {error}", None),
            )
        log.info(
            "sdrt http %s %s %s %d %.0fms",
            request_id,
            request.method,
            path,
            status,
            (time.perf_counter() - start) * 1000,
        )
        return _json_response(status, content, request_id)

    async def _answer(self, request: Any, path: str) -> Any:
        methods = [m for m, p in self.routes if p == path]
        if not methods:
            raise RequestError(f"no route {path}", status=404)
        if (request.method, path) not in self.routes:
            raise RequestError(f"{path} takes {', '.join(methods)}, not {request.method}", status=405)
        if path != "/health":
            self.auth.check(request.headers.get("authorization"))
        body = await self._body(request) if request.method == "POST" else {}
        answer = self.routes[request.method, path](body)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer

    async def _body(self, request: Any) -> dict[str, Any]:
        cap = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise RequestError(f"the body is {declared} bytes; this server takes at most {cap}", status=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise RequestError(f"the body is over {cap} bytes, this server's limit", status=413)
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"the body is not valid JSON ({error})") from error
        if not isinstance(body, dict):
            raise RequestError(f"the body must be a JSON object, got {type(body).__name__}")
        return body

    # ---- routes --------------------------------------------------------------------------------------
    def health(self, _: Any) -> dict[str, Any]:
        return {"status": "ok", "models": list(self.catalog.models)}

    def get_options(self, _: Any) -> dict[str, Any]:
        model = self.catalog.models[self.active]
        return {**self.options, "sd_model_checkpoint": model.title, "sd_checkpoint_hash": model.sha256}

    def set_options(self, body: dict[str, Any]) -> None:
        if "sd_model_checkpoint" in body:
            self.active = self.catalog.get(body["sd_model_checkpoint"], field="sd_model_checkpoint").name
        self.options.update({k: v for k, v in body.items() if k != "sd_model_checkpoint"})
        return None

    async def a1111(self, body: dict[str, Any], *, img2img: bool) -> dict[str, Any]:
        job = a1111.parse(body, self.catalog, self.active, self.limits, img2img=img2img)
        result = await self._run(job)
        return a1111.answer(body, job, result, self.catalog.models[job.settings.model])

    async def openai(self, body: dict[str, Any]) -> dict[str, Any]:
        job = openai_images.parse(body, self.catalog, self.limits)
        return openai_images.answer(job, await self._run(job))

    async def _run(self, job: Job) -> JobResult:
        """The job's result from its model's deployment: 503 if the replica died, 504 past the timeout."""
        from ray import exceptions

        job = dataclasses.replace(job, request_id=_request_id.get())
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
        if result.error:
            raise RequestError(result.error, status=result.status)
        return result


async def _resolved(response: Any) -> Any:
    return await response


def _error_body(path: str, status: int, message: str, field: str | None) -> dict[str, Any]:
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": field, "code": None}}
    return {"error": _REASONS.get(status, "Error"), "detail": message, "field": field}


def _json_response(status: int, content: Any, request_id: str) -> Any:
    from starlette.responses import Response

    headers = {"x-request-id": request_id}
    if status == 401:
        headers["www-authenticate"] = 'Bearer, Basic realm="sdrt"'
    return Response(json.dumps(content), status_code=status, media_type="application/json", headers=headers)
