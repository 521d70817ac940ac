"""The web page at ``/``: plain HTML, CSS and JavaScript modules from ``serve/web/`` (package data, no build
step, nothing from a CDN). The page itself is open; the API calls it makes carry the key it asks for.

Only the files named here are served: nothing a request says is used as a path.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response

from .fields import RequestError

WEB = Path(__file__).with_name("web")
FILES = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "mask.js": "text/javascript",
    "style.css": "text/css",
}
# data: and blob: for the previews, results and the picked init image; everything else from this server
POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": POLICY,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
}


def is_page_path(path: str) -> bool:
    """The page's own files, served without credentials (``path`` without its trailing slash)."""
    return path == "/" or path.startswith("/web/")


def web_page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(WEB / "index.html", media_type="text/html", headers=HEADERS)

    @app.get("/web/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in FILES:
            raise RequestError(f"no page file {name[:80]!r}", status=404)
        return FileResponse(WEB / name, media_type=FILES[name], headers=HEADERS)
