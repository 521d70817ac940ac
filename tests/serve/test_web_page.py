"""The web page at ``/`` in headless Chromium (Debian's ``chromium``, driven by Playwright), used as a person
uses it: the key asked once, a prompt typed, the progress bar rising and the image appearing, a long job
interrupted, and an inpainting mask drawn with the mouse.

The images are checked against the API (the same request sent by ``requests``), not against the page's code.
Set ``SDRT_PAGE_SCREENSHOT=docs/web-page.png`` to save README's screenshot from the run.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess

from .conftest import KEY, PASSWORD, USER

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the page tests need Playwright (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SIZE = 96


@pytest.fixture(scope="module")
def browser():
    driver = sync_api.sync_playwright().start()
    try:
        launched = driver.chromium.launch(executable_path=CHROMIUM)
    except Exception as error:  # noqa: BLE001 - any launch failure is the same skip
        driver.stop()
        pytest.skip(f"headless Chromium cannot start from {CHROMIUM} ({str(error).splitlines()[0]})")
    yield launched
    launched.close()
    driver.stop()


def open_page(browser: Any, server: ServerProcess, secret: str = KEY) -> Any:
    """A new tab on the page, past its key form."""
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.goto(server.url)
    page.get_by_label("API key (or user:password)").fill(secret)
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.get_by_role("button", name="Generate")).to_be_visible()
    return page


def settings(page: Any, prompt: str, steps: int, seed: int) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Width").fill(str(SIZE))
    page.get_by_label("Height").fill(str(SIZE))
    page.get_by_label("Steps").fill(str(steps))
    page.get_by_label("Seed").fill(str(seed))
    page.get_by_label("Sampler").select_option("Euler a")


def gallery(page: Any) -> Any:
    return page.get_by_role("list", name="Gallery").get_by_role("img")


def watch(page: Any, images: int, timeout: float = 120) -> list[float]:
    """The progress bar's values until the gallery holds ``images`` images."""
    bar = page.get_by_role("progressbar", name="Progress")
    values, deadline = [], time.monotonic() + timeout
    while gallery(page).count() < images:
        assert time.monotonic() < deadline, f"no image after {timeout} s; progress {values[-5:]}"
        values.append(bar.evaluate("e => e.value"))
        time.sleep(0.03)
    return values


def pixels(url_or_b64: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(url_or_b64.split(",")[-1])))
    return np.asarray(image.convert("RGB")).astype(np.int16)


def api_post(server: ServerProcess, path: str, body: dict) -> dict:
    response = requests.post(f"{server.url}{path}", json=body, auth=(USER, PASSWORD), timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def long_job(browser: Any, server: ServerProcess) -> dict:
    """A 150-step txt2img from the page, the progress bar sampled while it ran."""
    page = open_page(browser, server)
    settings(page, "a red circle", steps=150, seed=11)
    started = time.monotonic()
    page.get_by_role("button", name="Generate").click()
    values = watch(page, 1)
    seconds = time.monotonic() - started
    return {"page": page, "values": values, "seconds": seconds}


def test_the_page_is_open_and_serves_only_its_own_files(server: ServerProcess) -> None:
    page = requests.get(f"{server.url}/", timeout=30)  # no credentials: the page asks for them itself
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = requests.get(f"{server.url}/web/app.js", timeout=30)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for path in ("/web/index.py", "/web/..%2Fhttp.py", "/web/%2E%2E/app.py", "/web/"):
        assert requests.get(f"{server.url}{path}", timeout=30).status_code in (401, 404), path
    assert requests.get(f"{server.url}/sdapi/v1/sd-models", timeout=30).status_code == 401


def test_the_page_asks_for_the_key_and_refuses_a_wrong_one(browser: Any, server: ServerProcess) -> None:
    page = browser.new_page()
    page.goto(server.url)
    assert page.get_by_role("button", name="Generate").is_hidden()
    page.get_by_label("API key (or user:password)").fill("wrong")
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.get_by_role("alert")).to_have_text("The server refused this key.")
    page.close()
    page = open_page(browser, server, f"{USER}:{PASSWORD}")  # --api-auth's Basic credentials also work
    models = page.get_by_label("Model").locator("option").all_inner_texts()
    assert models == ["sd-shapes", "sd-shapes-b", "sd-shapes-cn"]
    assert "Euler a" in page.get_by_label("Sampler").locator("option").all_inner_texts()
    loras = requests.get(
        f"{server.url}/sdapi/v1/loras", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    listed = loras.json() if loras.status_code == 200 else []  # the picker shows only LoRAs there are
    assert page.get_by_label("LoRA").is_visible() == bool(listed)
    page.reload()  # the key is kept for the tab
    sync_api.expect(page.get_by_role("button", name="Generate")).to_be_visible()


def test_generate_shows_rising_progress_then_the_image(long_job: dict, server: ServerProcess) -> None:
    page, values = long_job["page"], long_job["values"]
    running = [v for v in values if 0 < v < 1]
    assert len(set(running)) >= 3 and running == sorted(running), values
    assert page.get_by_role("status").inner_text() == "Done"
    image = gallery(page).first
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [SIZE, SIZE]
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").first.click()
    saved = Image.open(download.value.path())
    assert saved.size == (SIZE, SIZE) and download.value.suggested_filename == "sdrt-11.png"
    alone = api_post(
        server,
        "/sdapi/v1/txt2img",
        {
            "prompt": "a red circle",
            "steps": 150,
            "width": SIZE,
            "height": SIZE,
            "seed": 11,
            "sampler_name": "Euler a",
        },
    )
    np.testing.assert_array_equal(pixels(image.get_attribute("src")), pixels(alone["images"][0]))


def test_the_api_s_refusals_are_shown_as_their_text(browser: Any, server: ServerProcess) -> None:
    page = open_page(browser, server)
    settings(page, "a red circle", steps=151, seed=1)
    page.get_by_role("button", name="Generate").click()
    body = {"prompt": "a red circle", "steps": 151}
    refused = requests.post(f"{server.url}/sdapi/v1/txt2img", json=body, auth=(USER, PASSWORD), timeout=30)
    assert refused.status_code == 400
    sync_api.expect(page.get_by_role("alert")).to_have_text(refused.json()["detail"])
    sync_api.expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    assert gallery(page).count() == 0


def test_interrupt_ends_a_long_job_early(long_job: dict, browser: Any, server: ServerProcess) -> None:
    page = open_page(browser, server)
    settings(page, "a blue square", steps=150, seed=12)
    page.get_by_role("button", name="Generate").click()
    bar = page.get_by_role("progressbar", name="Progress")
    deadline = time.monotonic() + 60
    while bar.evaluate("e => e.value") < 0.05:
        assert time.monotonic() < deadline, "the job never progressed"
        time.sleep(0.02)
    asked = time.monotonic()
    page.get_by_role("button", name="Interrupt").click()
    watch(page, 1)
    assert time.monotonic() - asked < long_job["seconds"] / 2
    sync_api.expect(page.get_by_role("status")).to_have_text("Interrupted")
    assert gallery(page).first.evaluate("i => i.naturalWidth") == SIZE
    sync_api.expect(page.get_by_role("button", name="Generate")).to_be_enabled()


def test_img2img_with_a_mask_drawn_with_the_mouse(
    browser: Any, server: ServerProcess, tmp_path: Path
) -> None:
    picture = Image.new("RGB", (SIZE, SIZE), (40, 90, 200))
    picture.paste((230, 200, 30), (20, 20, 76, 76))
    picture.save(tmp_path / "init.png")
    page = open_page(browser, server)
    settings(page, "a green triangle", steps=8, seed=4)
    page.get_by_label("Init image").set_input_files(str(tmp_path / "init.png"))
    page.get_by_label("Denoising strength").fill("1")
    canvas = page.get_by_label("Mask: draw where to repaint")
    sync_api.expect(canvas).to_be_visible()
    page.get_by_role("button", name="Generate").click()  # no strokes yet: plain img2img
    watch(page, 1)
    plain = pixels(gallery(page).first.get_attribute("src"))

    box = canvas.bounding_box()
    page.get_by_label("Brush size").fill("24")
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5, steps=10)
    page.mouse.up()
    with page.expect_request("**/sdapi/v1/img2img") as sent:
        page.get_by_role("button", name="Generate").click()
    watch(page, 2)
    masked = pixels(gallery(page).first.get_attribute("src"))
    body = sent.value.post_data_json
    mask = pixels(body["mask"])[..., 0]
    assert mask.shape == (SIZE, SIZE) and set(np.unique(mask)) >= {0, 255}
    inside, outside = mask > 127, mask == 0
    assert inside[SIZE // 2, SIZE // 4 : 3 * SIZE // 4].all() and not inside[: SIZE // 4].any()
    assert np.abs(masked - plain)[inside].mean() > 1, "the masked image equals the plain one inside the mask"
    api = api_post(server, "/sdapi/v1/img2img", {k: body[k] for k in body if k != "force_task_id"})
    np.testing.assert_array_equal(masked, pixels(api["images"][0]))
    assert outside.any()
    if path := os.environ.get("SDRT_PAGE_SCREENSHOT"):
        sync_api.expect(page.get_by_role("button", name="Generate")).to_be_enabled()
        page.screenshot(path=path, full_page=True)
