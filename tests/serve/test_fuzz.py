"""Bad input over HTTP, every A1111 and OpenAI route and field: always a 4xx JSON error naming the field,
never a 500 (issue 28's bad-input round), against the one ``sdrt serve`` of this session's serve tests.

Each body is a valid one with one field spoiled (wrong type, NaN/Infinity/1e999, huge, negative, empty,
nested, bad encodings), so a value that slipped through would show as a 200 here."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from .conftest import KEY

NESTED = "[" * 40 + "]" * 40
NAN, INF, NEG_INF, BIG = "NaN", "Infinity", "-Infinity", "1e999"  # raw JSON tokens
NUMBER_JUNK = [NAN, INF, NEG_INF, BIG, "-1e999", "1e30", "-5", '"many"', '""', "[]", "{}", "true", NESTED]
INTEGER_JUNK = [*NUMBER_JUNK, "2.5"]
STRING_JUNK = ["5", NAN, INF, BIG, "[]", "{}", "true", '["x"]', NESTED, json.dumps("a" * 1_000_000)]


def _png(size: tuple[int, int] = (64, 64), mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


BOMB = _png((8000, 8000), "L")  # small file, too many pixels
NOT_AN_IMAGE = base64.b64encode(b"hello, not a picture").decode()
IMAGE_JUNK = [
    *STRING_JUNK[:-1],
    '""',
    '"%%%"',
    json.dumps("data:image/png;base64,@@"),
    json.dumps(NOT_AN_IMAGE),
]
IMAGE_JUNK += [json.dumps(BOMB)]
TXT2IMG = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "seed": 1}
IMG2IMG = {**TXT2IMG, "init_images": [_png()], "denoising_strength": 0.5}
OPENAI = {"prompt": "x", "size": "64x64", "steps": 2, "seed": 1, "model": "sd-shapes"}

A1111_FIELDS = {
    "seed": INTEGER_JUNK,
    "batch_size": [*INTEGER_JUNK, "0", "1000"],
    "n_iter": [*INTEGER_JUNK, "0", "1000"],
    "steps": [*INTEGER_JUNK, "0", "100000"],
    "cfg_scale": [*NUMBER_JUNK, "101"],
    "width": [*INTEGER_JUNK, "60", "100000"],
    "height": [*INTEGER_JUNK, "60", "100000"],
    "prompt": STRING_JUNK,
    "negative_prompt": STRING_JUNK,
    "sampler_name": [*STRING_JUNK, '"Mystery"', '"DDIM Karras"'],
    "sampler_index": ["5", "[]", NAN, '"Mystery"'],
    "scheduler": [*STRING_JUNK, '"sideways"'],
    "override_settings": [
        '"x"',
        "5",
        "[]",
        NAN,
        '{"sd_model_checkpoint": 5}',
        '{"sd_model_checkpoint": "nope"}',
    ],
    "force_task_id": ["5", NAN, "[]", "{}", json.dumps("a" * 200)],
    "unknown_extra": [NAN, INF, BIG, "[" * 40 + "1" + "]" * 40],
}
IMG2IMG_FIELDS = {
    **A1111_FIELDS,
    "denoising_strength": [*NUMBER_JUNK, "0", "1.5"],
    "image_cfg_scale": [*NUMBER_JUNK, "101"],
    "inpainting_mask_invert": [*(j for j in INTEGER_JUNK if j != "true"), "2"],
    "init_images": ["5", '"x"', "[]", "{}", NAN, NESTED, *(f"[{junk}]" for junk in IMAGE_JUNK)],
    "mask": IMAGE_JUNK,
}
OPENAI_FIELDS = {
    "prompt": [*STRING_JUNK, '""'],
    "model": [*STRING_JUNK, '"../../etc/passwd"', '"nope"'],
    "n": [*INTEGER_JUNK, "0", "1000"],
    "size": [*STRING_JUNK, '"64"', '"64x"', '"x64"', '"\u00b2x\u00b2"', '"64x64x64"', '"99999999999x64"'],
    "response_format": ["5", "[]", NAN, '"url"', '"gif"'],
    "seed": INTEGER_JUNK,
    "steps": [*INTEGER_JUNK, "0"],
    "guidance_scale": [*NUMBER_JUNK, "101"],
    "negative_prompt": STRING_JUNK,
    "sampler_name": [*STRING_JUNK, '"Mystery"'],
    "scheduler": ["5", NAN, '"sideways"'],
    "stream": ["5", '"x"', NAN, "[]", "{}"],
    "partial_images": [*INTEGER_JUNK, "4"],
    "unknown_extra": [NAN, INF, BIG],
}
OPTIONS_FIELDS = {"sd_model_checkpoint": ["5", NAN, "[]", '"nope"'], "unknown_extra": [NAN, INF, BIG, NESTED]}
BODY_JUNK = [
    b"",
    b"null",
    b"[]",
    b"5",
    b'"x"',
    b"\xff\xfe{",
    b'{"prompt": "x",',
    b"[" * 100_000,
    b"{" * 100_000,
]


def _body(base: dict, field: str, raw: str) -> bytes:
    """``base`` with ``field`` set to the raw JSON text ``raw`` (so NaN and 1e999 go out as written)."""
    rest = {k: v for k, v in base.items() if k != field}
    text = json.dumps(rest)
    return (text[:-1] + (", " if rest else "") + f"{json.dumps(field)}: {raw}}}").encode()


def _cases() -> list[tuple[str, str, str, bytes]]:
    cases = []
    for path, base, fields in (
        ("/sdapi/v1/txt2img", TXT2IMG, A1111_FIELDS),
        ("/sdapi/v1/img2img", IMG2IMG, IMG2IMG_FIELDS),
        ("/v1/images/generations", OPENAI, OPENAI_FIELDS),
        ("/sdapi/v1/options", {}, OPTIONS_FIELDS),
    ):
        cases += [
            (path, field, raw, _body(base, field, raw)) for field, values in fields.items() for raw in values
        ]
        cases += [(path, "", repr(junk)[:20], junk) for junk in BODY_JUNK]
    return cases


def _field_named(path: str, answer: dict) -> str | None:
    return answer["error"]["param"] if path.startswith("/v1/") else answer["field"]


def test_every_route_and_field_refuses_junk_with_a_4xx(server) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    wrong = []
    for path, field, raw, body in _cases():
        response = session.post(f"{server.url}{path}", data=body, timeout=60)
        answer = response.json()
        named = _field_named(path, answer)
        expected_field = field.replace("override_settings", "sd_model_checkpoint") if field else None
        ok = 400 <= response.status_code < 500 and (
            named is None if not field else named is not None and named.startswith(expected_field or "")
        )
        if field == "override_settings" and raw in ('"x"', "5", "[]", NAN):
            ok = 400 <= response.status_code < 500 and named == "override_settings"
        if not ok:
            wrong.append(f"{path} {field}={raw[:40]}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert session.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"


def test_wrong_methods_content_types_and_routes_are_4xx(server) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    for path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/v1/images/generations", "/sdapi/v1/options"):
        for method in ("PUT", "DELETE", "PATCH"):
            response = requests.request(method, f"{server.url}{path}", headers=headers, timeout=30)
            assert response.status_code == 405 and response.json(), (method, path, response.text)
    for path in ("/sdapi/v1/samplers", "/sdapi/v1/sd-models", "/v1/models", "/sdapi/v1/schedulers"):
        assert requests.post(f"{server.url}{path}", headers=headers, timeout=30).status_code == 405
    text = {**headers, "Content-Type": "text/plain"}
    response = requests.post(
        f"{server.url}/sdapi/v1/txt2img", data=json.dumps(TXT2IMG), headers=text, timeout=30
    )
    assert response.status_code == 400 and response.json()["field"] is None
    assert requests.get(f"{server.url}/sdapi/v1/%00../../etc", headers=headers, timeout=30).status_code == 404
    assert requests.get(f"{server.url}/docs", timeout=30).status_code == 200
    schema = requests.get(f"{server.url}/openapi.json", timeout=30).json()["components"]["schemas"]
    assert {
        "StableDiffusionProcessingTxt2Img",
        "StableDiffusionProcessingImg2Img",
        "ImageGenerateParams",
    } <= set(schema)
    assert {"TextToImageResponse", "ImageToImageResponse", "ImagesResponse"} <= set(schema)


def test_tiny_denoising_strength_runs_one_step_and_fails_no_batch(server) -> None:
    """A1111 runs at least one step for any denoising_strength > 0; a bad request beside good ones in a
    batch window leaves them 200."""
    headers = {"Authorization": f"Bearer {KEY}"}
    tiny = {**IMG2IMG, "denoising_strength": 0.01, "steps": 4}
    bodies = [("/sdapi/v1/img2img", tiny)] + [("/sdapi/v1/txt2img", {**TXT2IMG, "seed": s}) for s in range(3)]
    bodies += [("/sdapi/v1/txt2img", {**TXT2IMG, "steps": "x"})]

    def post(item: tuple[str, dict]) -> requests.Response:
        return requests.post(f"{server.url}{item[0]}", json=item[1], headers=headers, timeout=120)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(post, bodies))
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 400], [a.text[:200] for a in answers]
    info = json.loads(answers[0].json()["info"])
    assert info["denoising_strength"] == pytest.approx(0.25)  # one of the 4 steps


class _Failing:
    """A model handle whose replica answers a failed job (its message holds a path), or raises."""

    def __init__(self, raises: bool) -> None:
        self.raises = raises
        self.generate = self

    def remote(self, job):
        from sdrt.serve.requests import JobResult

        async def answer():
            if self.raises:
                raise KeyError("/srv/secret/path")
            return JobResult([], 0, 0, 0.0, error="OSError: /srv/secret/path/unet.onnx", status=500)

        return answer()


@pytest.mark.parametrize("raises", [False, True])
def test_a_500_names_the_request_id_and_no_traceback_or_path(shapes_bundle, raises: bool) -> None:
    from starlette.testclient import TestClient

    from sdrt.serve.app import make_app
    from sdrt.serve.http import Api

    api = Api([str(shapes_bundle)], {"sd-shapes": _Failing(raises)}, {}, {})
    client = TestClient(make_app(api), raise_server_exceptions=False)
    for path, body in (("/sdapi/v1/txt2img", TXT2IMG), ("/v1/images/generations", OPENAI)):
        response = client.post(path, json=body)
        assert response.status_code == 500, response.text
        request_id = response.headers["x-request-id"]
        assert request_id in response.text
        assert "secret" not in response.text and "Traceback" not in response.text
