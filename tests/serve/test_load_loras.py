"""The jobs surface under load (issue 27): 200 txt2img requests from 16 clients at once on the shared server,
a mix of LoRA sets, each client polling its own job's progress, every tenth request interrupted by its id.
No request fails (the interrupted ones answer with what they had), no LoRA bleeds into another request (each
completed image equals the same request run alone) and the model's replicas are the same, alive, at the end.

Slow (200 requests in 42 s, 196 s with the server and bundles, on this 2-core machine with other work running):
run with ``-m slow``."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess, replica_pids

from .conftest import PASSWORD, USER

pytestmark = pytest.mark.slow

LORA_SETS = ["", "<lora:tiny:0.8>", "<lora:other:0.5>", "<lora:tiny:0.8> <lora:other:0.5>"]
COMBOS = [(loras, seed) for loras in LORA_SETS for seed in range(4)]  # 16 distinct requests
REQUESTS, CLIENTS, INTERRUPT_EVERY = 200, 16, 10
SHORT = {"steps": 8, "width": 64, "height": 64, "cfg_scale": 7.5, "sampler_name": "Euler a"}
LONG = {**SHORT, "steps": 150}  # the interrupted ones: long enough to be stopped on the way


def body(index: int, settings: dict) -> dict:
    loras, seed = COMBOS[index % len(COMBOS)]
    return {"prompt": f"a blue square {loras}".strip(), "seed": seed, **settings}


def picture(answer: requests.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    data = base64.b64decode(answer.json()["images"][0])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def post(server: ServerProcess, payload: dict) -> requests.Response:
    return requests.post(f"{server.url}/sdapi/v1/txt2img", json=payload, auth=(USER, PASSWORD), timeout=600)


def client(server: ServerProcess, index: int, polls: Counter) -> tuple[int, requests.Response]:
    """One request; its progress polled by id while it runs; interrupted past step 2 where it is a tenth one."""
    interrupt = index % INTERRUPT_EVERY == 0
    job_id = f"load-{index}"
    answer: list[requests.Response] = []
    settings = LONG if interrupt else SHORT
    worker = threading.Thread(
        target=lambda: answer.append(post(server, {**body(index, settings), "force_task_id": job_id}))
    )
    worker.start()
    auth = (USER, PASSWORD)
    while worker.is_alive():
        progress = requests.get(
            f"{server.url}/sdapi/v1/progress",
            params={"id_task": job_id, "skip_current_image": "true"},
            auth=auth,
            timeout=60,
        )
        if progress.status_code == 200:
            polls[progress.json()["state"]["job"] == job_id] += 1
            if interrupt and progress.json()["state"]["sampling_step"] >= 2:
                requests.post(
                    f"{server.url}/sdapi/v1/interrupt", params={"id_task": job_id}, auth=auth, timeout=60
                )
        time.sleep(0.05)
    worker.join()
    return index, answer[0]


def test_200_requests_16_clients_lora_mix_polls_and_interrupts(server: ServerProcess) -> None:
    root = server.process.pid
    replicas = replica_pids("model-sd-shapes", root)
    alone = [picture(post(server, body(i, SHORT))) for i in range(len(COMBOS))]
    assert len({a.tobytes() for a in alone}) == len(COMBOS), "each LoRA set and seed gives its own picture"
    polls: Counter = Counter()
    start = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda i: client(server, i, polls), range(REQUESTS)))
    seconds = time.monotonic() - start
    statuses = Counter(answer.status_code for _, answer in answers)
    assert statuses == {200: REQUESTS}, statuses
    interrupted = [picture(a) for i, a in answers if i % INTERRUPT_EVERY == 0]
    assert all(image.shape == (64, 64, 3) for image in interrupted)
    for index, answer in answers:
        if index % INTERRUPT_EVERY:
            np.testing.assert_array_equal(
                picture(answer), alone[index % len(COMBOS)], err_msg=f"request {index}"
            )
    assert polls[True] >= REQUESTS // 2, polls  # the polls saw the jobs running
    assert sorted(replica_pids("model-sd-shapes", root)) == sorted(replicas), "a replica died or was replaced"
    print(
        f"{REQUESTS} requests from {CLIENTS} clients in {seconds:.0f} s, {polls[True]} polls of a running job"
    )
