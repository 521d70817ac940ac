"""Jobs over HTTP, driven by the clients people use: A1111's progress, interrupt and skip through webuiapi
(and the raw routes, with ``id_task``), OpenAI's streamed partial images through the ``openai`` package.

The tiny bundle is fast, so the jobs here are long in steps (150, the server's cap) rather than in pixels."""

from __future__ import annotations

import base64
import io
import threading
import time
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess

from .conftest import KEY, PASSWORD, USER

webuiapi = pytest.importorskip("webuiapi")
openai = pytest.importorskip("openai")

LONG = {"prompt": "a red circle", "steps": 150, "width": 96, "height": 96, "sampler_name": "Euler a"}


@pytest.fixture
def webui(server: ServerProcess):
    return webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1", username=USER, password=PASSWORD)


def png(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "PNG"
    return image


class Background:
    """A client call in a thread: ``result`` when done, and when it ended."""

    def __init__(self, call: Any, *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.ended = 0.0

        def run() -> None:
            self.result = call(*args, **kwargs)
            self.ended = time.monotonic()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()


def wait_for_step(poll: Any, step: int, job: Background, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not job.done():
        answer = poll()
        if answer["state"]["sampling_step"] >= step:
            return answer
        time.sleep(0.01)
    raise AssertionError(f"the job never reached step {step}")


@pytest.fixture(scope="module")
def full_job(server: ServerProcess) -> dict:
    """A 150-step txt2img by webuiapi while the test polls ``get_progress()``: the polls, the image, seconds."""
    api = webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1", username=USER, password=PASSWORD)
    start = time.monotonic()
    job = Background(api.txt2img, seed=11, **LONG)
    polls = []
    while not job.done():
        polls.append(api.get_progress())
        time.sleep(0.02)
    return {"polls": polls, "result": job.result, "seconds": job.ended - start, "after": api.get_progress()}


def test_progress_rises_with_decodable_previews_then_idles(full_job) -> None:
    running = [p for p in full_job["polls"] if p["state"]["job_count"] > 0]
    steps = [p["state"]["sampling_step"] for p in running]
    assert len(set(steps)) >= 3 and steps == sorted(steps) and max(steps) <= 150, steps
    assert all(p["state"]["sampling_steps"] == 150 for p in running if p["state"]["sampling_step"])
    fractions = [p["progress"] for p in running]
    assert fractions == sorted(fractions) and 0 < fractions[-1] <= 1
    assert all(p["eta_relative"] >= 0 for p in running[len(running) // 2 :])
    previews = [png(p["current_image"]) for p in running if p["current_image"]]
    assert previews, "no preview while the job ran"
    pixels = np.asarray(previews[-1].convert("RGB"))
    assert previews[-1].size == (96, 96) and pixels.std() > 0
    assert full_job["result"].images[0].size == (96, 96)
    idle = full_job["after"]
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0 and idle["current_image"] is None


def test_interrupt_ends_a_long_job_early_with_its_image_and_the_replica_serves_on(webui, full_job) -> None:
    job = Background(webui.txt2img, seed=11, **LONG)
    wait_for_step(webui.get_progress, 10, job)
    asked = time.monotonic()
    assert webui.interrupt() == {}
    job.thread.join(60)
    assert job.ended - asked < full_job["seconds"] / 2
    interrupted = job.result.images[0]
    assert interrupted.size == (96, 96)
    full = np.asarray(full_job["result"].images[0].convert("RGB"))
    assert not np.array_equal(np.asarray(interrupted.convert("RGB")), full)  # decoded before the last step
    again = webui.txt2img(prompt="a blue square", steps=4, width=64, height=64, seed=1)
    assert again.images[0].size == (64, 64)


def test_skip_ends_the_current_call_and_the_job_runs_its_next(webui) -> None:
    """5 images are two pipeline calls (4 rows at most): skip ends the first; the second is unchanged."""
    settings = {"prompt": "a green triangle", "steps": 100, "width": 64, "height": 64, "seed": 21}
    job = Background(webui.txt2img, n_iter=5, **settings)
    first = wait_for_step(webui.get_progress, 3, job)
    assert first["state"]["job_count"] == 2 and first["state"]["job_no"] == 0
    assert webui.skip() == {}
    job.thread.join(120)
    assert len(job.result.images) == 5
    seeds = job.result.info["all_seeds"]
    alone = webui.txt2img(**{**settings, "seed": seeds[4]}).images[0]
    np.testing.assert_array_equal(np.asarray(job.result.images[4]), np.asarray(alone))


def _get(server: ServerProcess, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params, auth=(USER, PASSWORD), timeout=30)


def _post(server: ServerProcess, path: str, body: Any = None, **params: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, params=params, auth=(USER, PASSWORD), timeout=120)


def test_jobs_batched_together_each_see_their_own_state_by_id(server: ServerProcess) -> None:
    ids = ["job-a", "job-b"]
    body = {"steps": 150, "width": 64, "height": 64, "seed": 3}
    jobs = [
        Background(_post, server, "/sdapi/v1/txt2img", {**body, "prompt": f"shape {i}", "force_task_id": i})
        for i in ids
    ]
    seen: dict[str, list[int]] = {i: [] for i in ids}
    while not any(j.done() for j in jobs) and min(len(s) for s in seen.values()) < 5:
        for i in ids:
            response = _get(server, "/sdapi/v1/progress", id_task=i, skip_current_image="true")
            if response.status_code == 404:  # not queued yet
                continue
            answer = response.json()
            assert answer["current_image"] is None and answer["current_task"] == i
            if answer["state"]["job"] == i:
                seen[i].append(answer["state"]["sampling_step"])
        time.sleep(0.02)
    _post(server, "/sdapi/v1/interrupt")  # no id: every running job
    for job in jobs:
        job.thread.join(60)
        assert job.result.status_code == 200 and len(job.result.json()["images"]) == 1
    for i in ids:
        assert len(set(seen[i])) >= 2 and seen[i] == sorted(seen[i]), seen
    done = _post(server, "/internal/progress", {"id_task": "job-a"}).json()
    assert done["completed"] and not done["active"]


def test_progress_of_an_unknown_job(server: ServerProcess) -> None:
    missing = _get(server, "/sdapi/v1/progress", id_task="no-such-job")
    assert missing.status_code == 404 and missing.json()["field"] == "id_task"
    waiting = _post(server, "/internal/progress", {"id_task": "no-such-job"})  # A1111's web page's route
    assert waiting.status_code == 200
    assert waiting.json()["active"] is False and waiting.json()["textinfo"] == "Waiting..."
    assert _get(server, "/sdapi/v1/progress", skip_current_image="maybe").status_code == 400


def test_openai_streams_partial_images_then_the_image(server: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    extra = {"steps": 90, "seed": 5}
    events = list(
        client.images.generate(
            prompt="a red circle", size="64x64", stream=True, partial_images=2, extra_body=extra
        )
    )
    kinds = [e.type for e in events]
    assert kinds[-1] == "image_generation.completed" and kinds.count("image_generation.completed") == 1
    partials = [e for e in events if e.type == "image_generation.partial_image"]
    assert [e.partial_image_index for e in partials] == list(range(len(partials))) and 1 <= len(partials) <= 2
    assert all(png(e.b64_json).size == (64, 64) for e in partials)
    streamed = png(events[-1].b64_json)
    assert streamed.size == (64, 64) and events[-1].size == "64x64"
    plain = client.images.generate(prompt="a red circle", size="64x64", extra_body=extra)
    np.testing.assert_array_equal(np.asarray(streamed), np.asarray(png(plain.data[0].b64_json)))


def test_openai_stream_refuses_bad_input_before_streaming(server: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="partial_images"):
        client.images.generate(prompt="a circle", size="64x64", stream=True, partial_images=7)
