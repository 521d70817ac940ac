"""The ingress's outer layer, an ASGI middleware around the FastAPI app: a request id, authentication,
the body cap, one log line per request, and JSON errors in each API's shape.

A1111 routes answer ``{"error", "detail", "field"}``, OpenAI routes ``{"error": {"message", "type",
"param"}}`` (what its clients parse). A 500 carries the request id (also in ``x-request-id``), never a
traceback, an exception's text or a path: those go to the server's log under the same id.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .auth import Auth
from .fields import RequestError
from .web_page import is_page_path

log = logging.getLogger("ray.serve")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/openapi.json")
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("sdrt_request_id", default="")


def error_body(path: str, status: int, message: str, field: str | None) -> dict[str, Any]:
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": field, "code": None}}
    return {"error": REASONS.get(status, "Error"), "detail": message, "field": field}


def internal_error(path: str) -> dict[str, Any]:
    rid = request_id.get()
    return error_body(path, 500, f"internal error (request id {rid}); the server's log has the details", None)


def json_response(status: int, content: Any) -> Any:
    from starlette.responses import Response

    headers = {"www-authenticate": 'Bearer, Basic realm="sdrt"'} if status == 401 else None
    body = json.dumps(content, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class Guard:
    """Pure ASGI (no task switch), so the request id set here is the one the routes see."""

    def __init__(self, app: ASGIApp, auth: Auth, max_body_bytes: int) -> None:
        self.app = app
        self.auth = auth
        self.cap = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, rid = time.perf_counter(), uuid.uuid4().hex[:12]
        request_id.set(rid)
        path = scope["path"].rstrip("/") or "/"
        state = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.update(status=message["status"], started=True)
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self._guarded(scope, receive, send_with_id, path)
        except Exception:  # noqa: BLE001 - a bug: answered 500 with the id, logged with its traceback
            log.exception("sdrt request %s %s failed", rid, path)
            if not state["started"]:
                await json_response(500, internal_error(path))(scope, receive, send_with_id)
        log.info(
            "sdrt http %s %s %s %d %.0fms",
            rid,
            scope.get("method", ""),
            path,
            state["status"],
            (time.perf_counter() - start) * 1000,
        )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        try:
            if path not in OPEN_PATHS and not is_page_path(path):
                self.auth.check(_header(scope, b"authorization"))
            receive = await self._capped(scope, receive)
        except RequestError as error:
            body = error_body(path, error.status, str(error), error.field)
            await json_response(error.status, body)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _capped(self, scope: Scope, receive: Receive) -> Receive:
        """The whole body read (at most the cap, else a 413), handed on as one message."""
        declared = _header(scope, b"content-length") or ""
        if declared.isdigit() and int(declared) > self.cap:
            raise RequestError(
                f"the body is {declared} bytes; this server takes at most {self.cap}", status=413
            )
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return _replay(message, receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.cap:
                raise RequestError(f"the body is over {self.cap} bytes, this server's limit", status=413)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return _replay({"type": "http.request", "body": b"".join(chunks), "more_body": False}, receive)


def _replay(first: Message, receive: Receive) -> Receive:
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
