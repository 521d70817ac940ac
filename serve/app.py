"""The ingress's FastAPI app: A1111's and OpenAI's routes over ``Api``, and the errors in their shapes.

Validation errors are 400 (as the server answered before FastAPI, and A1111's clients expect) with the
field named: ``steps``, ``init_images[0]``; a body that is not JSON, or not an object, names none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from .controlnet_routes import controlnet_routes
from .fields import RequestError
from .guard import Guard, error_body, json_response
from .job_routes import job_routes
from .network_routes import network_routes
from .samplers import SAMPLERS, SCHEDULES
from .schemas import (
    ImageGenerateParams,
    ImagesResponse,
    ImageToImageResponse,
    Options,
    StableDiffusionProcessingImg2Img,
    StableDiffusionProcessingTxt2Img,
    TextToImageResponse,
)
from .web_page import web_page_routes

if TYPE_CHECKING:
    from .http import Api


def make_app(api: Api) -> FastAPI:
    # strict_content_type off: A1111's clients (and curl without -H) post JSON without a Content-Type
    app = FastAPI(
        title="sdrt",
        summary="AUTOMATIC1111's and OpenAI's image APIs over sdrt engine bundles",
        strict_content_type=False,
    )
    app.add_middleware(Guard, auth=api.auth, max_body_bytes=api.limits.max_body_bytes)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    _a1111_routes(app, api)
    job_routes(app, api)
    _openai_routes(app, api)
    network_routes(app, api)
    controlnet_routes(app, api)
    web_page_routes(app)
    return app


def _a1111_routes(app: FastAPI, api: Api) -> None:
    @app.get("/health", tags=["sdrt"])
    async def health() -> dict[str, Any]:
        return api.health()

    @app.get("/sdapi/v1/samplers", tags=["a1111"])
    async def samplers() -> list[dict[str, Any]]:
        return [s.to_json() for s in SAMPLERS]

    @app.get("/sdapi/v1/schedulers", tags=["a1111"])
    async def schedulers() -> list[dict[str, Any]]:
        return [{"name": s, "label": s.title()} for s in SCHEDULES]

    @app.get("/sdapi/v1/sd-models", tags=["a1111"])
    async def sd_models() -> list[dict[str, Any]]:
        from .a1111 import sd_models as listed

        return listed(api.catalog)

    @app.get("/sdapi/v1/options", tags=["a1111"])
    async def get_options() -> dict[str, Any]:
        return api.get_options()

    @app.post("/sdapi/v1/options", tags=["a1111"])
    async def set_options(body: Options) -> None:
        api.set_options(body)

    @app.post("/sdapi/v1/txt2img", response_model=TextToImageResponse, tags=["a1111"])
    async def txt2img(body: StableDiffusionProcessingTxt2Img) -> dict[str, Any]:
        return await api.a1111(body)

    @app.post("/sdapi/v1/img2img", response_model=ImageToImageResponse, tags=["a1111"])
    async def img2img(body: StableDiffusionProcessingImg2Img) -> dict[str, Any]:
        return await api.a1111(body)


def _openai_routes(app: FastAPI, api: Api) -> None:
    @app.get("/v1/models", tags=["openai"])
    async def models() -> dict[str, Any]:
        from .openai_images import models as listed

        return listed(api.catalog)

    @app.post(
        "/v1/images/generations",
        response_model=ImagesResponse,
        response_model_exclude_none=True,
        tags=["openai"],
    )
    async def generations(body: ImageGenerateParams) -> Any:
        """Images as JSON, or with ``stream: true`` as server-sent events (``partial_images`` previews first)."""
        if body.stream:
            return await api.openai_stream(body)
        return await api.openai(body)

    @app.post(
        "/v1/images/edits", response_model=ImagesResponse, response_model_exclude_none=True, tags=["openai"]
    )
    async def edits(request: Request) -> Any:
        """OpenAI's multipart form: ``image``, optional ``mask`` (transparent = edit), ``prompt``, ``n``,
        ``size``, ``response_format``; inpainting (img2img where nothing is transparent)."""
        from .openai_edits import parse_edit, read_form

        form = read_form(request.headers.get("content-type", ""), await request.body())
        return await api.openai_job(parse_edit(form, api.catalog, api.limits))


def _path(request: Request) -> str:
    return request.url.path.rstrip("/") or "/"


async def _request_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, RequestError)
    return json_response(error.status, error_body(_path(request), error.status, str(error), error.field))


async def _validation_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, RequestValidationError)
    message, field = _first_problem(error.errors())
    return json_response(400, error_body(_path(request), 400, message, field))


async def _http_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, HTTPException)
    path = _path(request)
    message = {
        404: f"no route {path}",
        405: f"{path} does not take {request.method}",
    }.get(error.status_code, str(error.detail))
    if error.status_code == 400:
        message = "the body is not valid JSON (or nested too deeply)"
    return json_response(error.status_code, error_body(path, error.status_code, message, None))


def _first_problem(errors: Any) -> tuple[str, str | None]:
    """Pydantic's first complaint as (message, field): ``("body", "init_images", 0)`` -> ``init_images[0]``."""
    problem: dict[str, Any] = dict(list(errors)[0]) if errors else {"loc": (), "msg": "invalid", "type": ""}
    if problem.get("type") == "json_invalid":
        return f"the body is not valid JSON ({problem.get('ctx', {}).get('error', '')})", None
    loc = [part for part in problem.get("loc", ()) if part != "body"]
    if not loc:
        if problem.get("type") == "missing":
            return "the body is missing: send a JSON object", None
        return f"the body must be a JSON object ({problem.get('msg', '')})", None
    field = str(loc[0]) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
    given = repr(problem.get("input"))
    given = given if len(given) <= 60 else given[:57] + "..."
    return f"{field}: {problem.get('msg', 'invalid')}, got {given}", field
