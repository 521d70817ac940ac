"""``sdrt serve`` driven over HTTP by the clients people use: webuiapi (A1111's API) and openai.

The images must equal ``sdrt generate``'s for the same seed and settings, bit for bit (CPU)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess
from sdrt.cli.sdrt import main as sdrt_main

from .conftest import KEY, PASSWORD, USER

webuiapi = pytest.importorskip("webuiapi")
openai = pytest.importorskip("openai")

SETTINGS = {"steps": 12, "cfg_scale": 7.5, "width": 64, "height": 64, "sampler_name": "Euler a"}


@pytest.fixture
def webui(server: ServerProcess):
    return webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1", username=USER, password=PASSWORD)


def generated(bundle: Path, tmp_path: Path, prompt: str, seed: int, *extra: str) -> np.ndarray:
    """``sdrt generate``'s image for the settings above."""
    out = tmp_path / f"generate-{seed}.png"
    argv = ["generate", str(bundle), prompt, "--scheduler", "euler_a", "--steps", "12", "--guidance", "7.5"]
    argv += ["--seed", str(seed), "-o", str(out), "--no-progress", *extra]
    assert sdrt_main(argv) == 0
    return np.asarray(Image.open(out).convert("RGB"))


def test_a1111_txt2img_equals_sdrt_generate(webui, shapes_bundle: Path, tmp_path: Path) -> None:
    result = webui.txt2img(prompt="a red circle", seed=7, **SETTINGS)
    expected = generated(shapes_bundle, tmp_path, "a red circle", 7, "--size", "64x64")
    assert len(result.images) == 1
    np.testing.assert_array_equal(np.asarray(result.images[0].convert("RGB")), expected)
    assert result.info["all_seeds"] == [7] and result.info["sampler_name"] == "Euler a"
    assert result.info["sd_model_name"] == "sd-shapes"


def _picture(tmp_path: Path, name: str, mode: str, seed: int) -> tuple[Image.Image, Path]:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3 if mode == "RGB" else 1), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(), mode)
    path = tmp_path / f"{name}.png"
    image.save(path)
    return image, path


def test_a1111_img2img_equals_sdrt_generate(webui, shapes_bundle: Path, tmp_path: Path) -> None:
    image, path = _picture(tmp_path, "init", "RGB", 1)
    result = webui.img2img(images=[image], prompt="a blue square", seed=3, denoising_strength=0.6, **SETTINGS)
    expected = generated(
        shapes_bundle, tmp_path, "a blue square", 3, "--image", str(path), "--strength", "0.6"
    )
    np.testing.assert_array_equal(np.asarray(result.images[0].convert("RGB")), expected)


def test_a1111_inpaint_equals_sdrt_generate(webui, shapes_bundle: Path, tmp_path: Path) -> None:
    image, path = _picture(tmp_path, "init", "RGB", 2)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(tmp_path / "mask.png")
    result = webui.img2img(
        images=[image], mask_image=mask, prompt="a green triangle", seed=4, denoising_strength=1.0, **SETTINGS
    )
    expected = generated(
        shapes_bundle,
        tmp_path,
        "a green triangle",
        4,
        "--image",
        str(path),
        "--mask",
        str(tmp_path / "mask.png"),
    )
    np.testing.assert_array_equal(np.asarray(result.images[0].convert("RGB")), expected)


def test_openai_images_generate_equals_sdrt_generate(server, shapes_bundle: Path, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    extra = {"seed": 9, "steps": 12, "sampler_name": "Euler a", "guidance_scale": 7.5}
    answer = client.images.generate(
        model="sd-shapes",
        prompt="a yellow circle",
        n=1,
        size="64x64",
        response_format="b64_json",
        extra_body=extra,
    )
    image = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json))).convert("RGB")
    expected = generated(shapes_bundle, tmp_path, "a yellow circle", 9, "--size", "64x64")
    np.testing.assert_array_equal(np.asarray(image), expected)
    assert [m.id for m in client.models.list()] == ["sd-shapes", "sd-shapes-b", "sd-shapes-cn"]


def test_each_image_of_a_batch_is_its_seed_alone(webui) -> None:
    batch = webui.txt2img(prompt="a red square", seed=20, batch_size=3, **SETTINGS)
    assert batch.info["all_seeds"] == [20, 21, 22] and batch.info["sdrt"]["batch_images"] == 3
    for seed, image in zip((20, 21, 22), batch.images):
        alone = webui.txt2img(prompt="a red square", seed=seed, **SETTINGS)
        assert alone.info["sdrt"]["batch_images"] == 1
        np.testing.assert_array_equal(np.asarray(image), np.asarray(alone.images[0]))


def test_models_samplers_and_switching_the_active_model(webui) -> None:
    assert webui.util_get_model_names() == sorted(m["title"] for m in webui.get_sd_models())
    assert {"Euler a", "DPM++ 2M", "DDIM"} <= set(webui.util_get_sampler_names())
    webui.util_set_model("sd-shapes-b")
    try:
        assert webui.util_get_current_model().startswith("sd-shapes-b [")
        assert webui.txt2img(prompt="a circle", seed=1, **SETTINGS).info["sd_model_name"] == "sd-shapes-b"
    finally:
        title = next(m["title"] for m in webui.get_sd_models() if m["model_name"] == "sd-shapes")
        webui.util_set_model(title, find_closest=False)
    assert webui.util_get_current_model().startswith("sd-shapes [")


def _post(server, path: str, body, headers=None) -> requests.Response:
    headers = {"Authorization": f"Bearer {KEY}", **(headers or {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{server.url}{path}", data=data, headers=headers, timeout=60)


BAD = {
    "malformed JSON": ("/sdapi/v1/txt2img", b'{"prompt": "a cat",', 400, None),
    "not an object": ("/sdapi/v1/txt2img", b"[1, 2]", 400, None),
    "unknown sampler": ("/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "Mystery"}, 400, "sampler_name"),
    "size outside profile": ("/sdapi/v1/txt2img", {"prompt": "x", "width": 512, "height": 512}, 400, "width"),
    "not a multiple": ("/sdapi/v1/txt2img", {"prompt": "x", "width": 60}, 400, "width"),
    "steps zero": ("/sdapi/v1/txt2img", {"prompt": "x", "steps": 0}, 400, "steps"),
    "steps a string": ("/sdapi/v1/txt2img", {"prompt": "x", "steps": "many"}, 400, "steps"),
    "n = 0": ("/v1/images/generations", {"prompt": "x", "n": 0}, 400, "n"),
    "n = 1000": ("/v1/images/generations", {"prompt": "x", "n": 1000}, 400, "n"),
    "batch too large": (
        "/sdapi/v1/txt2img",
        {"prompt": "x", "batch_size": 4, "n_iter": 4},
        400,
        "batch_size",
    ),
    "1 MB prompt": ("/sdapi/v1/txt2img", {"prompt": "a" * 1_000_000}, 400, "prompt"),
    "body over the cap": ("/sdapi/v1/txt2img", {"prompt": "x", "pad": "a" * 3_000_000}, 413, None),
    "non-image init": (
        "/sdapi/v1/img2img",
        {"prompt": "x", "init_images": ["aGVsbG8="]},
        400,
        "init_images[0]",
    ),
    "init not base64": ("/sdapi/v1/img2img", {"prompt": "x", "init_images": ["%%%"]}, 400, "init_images[0]"),
    "no init images": ("/sdapi/v1/img2img", {"prompt": "x"}, 400, "init_images"),
    "unknown model": ("/v1/images/generations", {"prompt": "x", "model": "../../etc/passwd"}, 404, "model"),
    "url format": (
        "/v1/images/generations",
        {"prompt": "x", "response_format": "url"},
        400,
        "response_format",
    ),
    "unknown checkpoint": ("/sdapi/v1/options", {"sd_model_checkpoint": "nope"}, 400, "sd_model_checkpoint"),
    "no route": ("/sdapi/v1/extra-batch-images", {}, 404, None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_request_is_a_4xx_json_error_naming_the_field(server, case: str) -> None:
    path, body, status, field = BAD[case]
    response = _post(server, path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if path.startswith("/v1/"):
        assert error["param"] == field and error["message"]
    else:
        assert response.json()["field"] == field and response.json()["detail"]
    assert requests.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"ann:nope").decode()},
    ],
)
def test_wrong_or_missing_credentials_are_401(server, headers: dict) -> None:
    response = requests.post(
        f"{server.url}/sdapi/v1/txt2img", json={"prompt": "x"}, headers=headers, timeout=30
    )
    assert response.status_code == 401 and "credentials" in response.json()["detail"]


def test_openai_client_sees_its_own_errors(server) -> None:
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.images.generate(prompt="a circle", size="64x64")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.images.generate(prompt="a circle", size="64x64", response_format="url")


def test_still_serving_after_the_bad_requests(webui) -> None:
    assert len(webui.txt2img(prompt="a blue circle", seed=5, **SETTINGS).images) == 1


def test_nothing_of_the_local_serve_listens_beyond_loopback(server) -> None:
    """Every listening socket of ``sdrt serve``'s processes (the driver, Ray's GCS, raylet, agents, workers,
    the Serve proxy and replicas) is on 127.0.0.1 (or ::1), as README says."""
    psutil = pytest.importorskip("psutil")
    root = psutil.Process(server.process.pid)
    pids = {root.pid, *(child.pid for child in root.children(recursive=True))}
    listening = [
        (c.pid, c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert server.port in {port for _, _, port in listening}, listening
    loopback = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
    assert [entry for entry in listening if entry[1] not in loopback] == []
