"""Beyond one machine: ``--print-config``'s file deployed with ``serve deploy`` on a running Ray cluster (a
head started with ``ray start``), and ``sdrt serve --address`` joining it; Ctrl-C removes only sdrt's app."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess, free_port

RAY = shutil.which("ray")
SERVE = shutil.which("serve")
pytestmark = pytest.mark.skipif(not (RAY and SERVE), reason="the ray and serve commands of ray[serve]")


def _wait_healthy(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} never became healthy")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A one-node Ray cluster, as ``ray start --head`` makes one. HOME is a fresh folder: a token file that
    an earlier Ray left in ~/.ray would turn on token authentication, which these commands do not send."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    gcs, dashboard = free_port(), free_port()
    start = [
        RAY,
        "start",
        "--head",
        "--port",
        str(gcs),
        "--dashboard-port",
        str(dashboard),
        "--num-cpus",
        "2",
    ]
    subprocess.run([*start, "--disable-usage-stats"], check=True, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


# suite time (35 s: a Ray cluster of its own)
@pytest.mark.slow
def test_config_file_deploys_on_a_cluster_and_serve_joins_it(
    cluster, shapes_bundle: Path, tmp_path: Path
) -> None:
    address, dashboard = cluster
    port = free_port()
    config = tmp_path / "sdrt.yaml"
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdrt.cli.sdrt",
            "serve",
            str(shapes_bundle),
            "--print-config",
            "--port",
            str(port),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    config.write_text(printed.stdout)
    subprocess.run(
        [SERVE, "deploy", str(config), "-a", dashboard], check=True, capture_output=True, timeout=180
    )
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url)
    answer = requests.post(
        f"{url}/v1/images/generations",
        json={"prompt": "a red circle", "size": "64x64", "seed": 1},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    image = Image.open(io.BytesIO(base64.b64decode(answer.json()["data"][0]["b64_json"])))
    assert image.size == (64, 64)
    subprocess.run([SERVE, "shutdown", "-y", "-a", dashboard], check=True, capture_output=True, timeout=120)

    joined = ServerProcess([str(shapes_bundle)], "--address", address, port=free_port())
    try:
        assert requests.get(f"{joined.url}/health", timeout=30).json()["models"] == ["sd-shapes"]
    finally:
        assert joined.stop() == 0
    status = subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "Active:" in status.stdout  # the cluster outlives sdrt serve
