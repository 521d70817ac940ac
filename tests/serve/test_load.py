"""A bounded load on loopback with 2 replicas, one of them killed during it: Ray replaces it, the server
keeps answering, the requests in flight on it get a 503 (none hangs), and Ctrl-C stops everything."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from benchmarks.serve_load import LoadReport, ServerProcess, free_port, payload, replica_pids, run_load


def _metrics(port: int, name: str, timeout: float = 60) -> list[str]:
    """The Prometheus lines of ``name`` on Ray's metrics port, once Ray has exported them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            lines = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines()
        except requests.RequestException:
            lines = []
        found = [line for line in lines if line.startswith(name)]
        if found:
            return found
        time.sleep(2)
    return []


def test_load_with_a_replica_killed(shapes_bundle: Path) -> None:
    metrics_port = free_port()
    options = [
        "--replicas",
        "2",
        "--max-batch-size",
        "4",
        "--request-timeout",
        "60",
        "--metrics-port",
        str(metrics_port),
    ]
    server = ServerProcess([str(shapes_bundle)], *options)
    try:
        root = server.process.pid  # the shared server of tests/serve/conftest.py may run beside this one
        assert len(replica_pids("model-sd-shapes", root)) == 2
        report = LoadReport(max_batch_size=4, requests=64, concurrency=16)
        run_load(server.url, report, steps=8, size=64, timeout=90, kill_after=16, root=root)
        assert report.killed_pid is not None
        assert set(report.statuses) <= {"200", "503"}, report.statuses  # no timeout, no other error
        assert report.statuses.get("200", 0) >= 48, report.statuses
        assert any(int(size) > 1 for size in report.batch_images), report.batch_images
        deadline = time.monotonic() + 120
        while len(replica_pids("model-sd-shapes", root)) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        pids = replica_pids("model-sd-shapes", root)
        assert len(pids) == 2 and report.killed_pid not in pids
        answer = requests.post(f"{server.url}/sdapi/v1/txt2img", json=payload(0, 8, 64), timeout=60)
        assert answer.status_code == 200
        assert "sdrt request" in server.output() and "batch_images=" in server.output()
        assert _metrics(metrics_port, "ray_sdrt_images_total")  # sdrt's metrics beside Ray Serve's
        assert _metrics(metrics_port, "ray_serve_num_http_requests")
    finally:
        code = server.stop()
    assert code == 0 and "sdrt serve: stopping" in server.output()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "replicas left after the stop"
