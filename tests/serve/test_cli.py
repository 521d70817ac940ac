"""``sdrt serve``'s options: the config file Ray Serve's own schema accepts, and errors before Ray starts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from benchmarks.serve_load import free_port
from sdrt.cli.sdrt import main as sdrt_main


def test_print_config_is_a_serve_deploy_config(shapes_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["serve", str(shapes_bundle), "--print-config", "--autoscale", "1:3", "--api-key", "secret"]
    argv += ["--api-auth", "ann:pa55word"]
    assert sdrt_main([*argv, "--host", "0.0.0.0", "--port", "8123", "--max-batch-size", "8"]) == 0
    text = capsys.readouterr().out
    config = ServeDeploySchema.model_validate(yaml.safe_load(text))
    assert config.http_options.host == "0.0.0.0" and config.http_options.port == 8123
    (app,) = config.applications
    assert app.import_path == "sdrt.serve.application:build" and app.route_prefix == "/"
    assert app.args["bundles"] == [str(shapes_bundle.resolve())]
    assert app.args["autoscale"] == [1, 3] and app.args["max_batch_size"] == 8
    assert "secret" not in text and "pa55word" not in text
    assert "SDRT_API_KEY" in text and "SDRT_API_AUTH" in text  # where the cluster reads them
    assert app.args["api_key"] is None and app.args["api_auth"] is None


def test_config_args_build_the_application(shapes_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    from ray.serve import Application

    from sdrt.serve.application import build

    assert sdrt_main(["serve", str(shapes_bundle), "--print-config", "--replicas", "2"]) == 0
    args = yaml.safe_load(capsys.readouterr().out)["applications"][0]["args"]
    assert isinstance(build(args), Application)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--autoscale", "3"], "--autoscale"),
        (["--replicas", "0"], "--replicas"),
        (["--port", "70000"], "--port"),
        (["--max-body-mb", "-1"], "--max-body-mb"),
        (["--max-body-mb", "0"], "--max-body-mb"),
        (["--request-timeout", "nan"], "--request-timeout"),
        (["--request-timeout", "inf"], "--request-timeout"),
        (["--batch-wait-ms", "-5"], "--batch-wait-ms"),
        (["--api-auth", "nocolon"], "--api-auth"),
        (["--api-auth", "ann:"], "--api-auth"),
        (["--api-auth", "ann:pw,"], "--api-auth"),
        (["--provider", "quantum"], "--provider"),
        (["--cpus-per-replica", "-1"], "--cpus-per-replica"),
        (["--gpus-per-replica", "nan"], "--gpus-per-replica"),
        (["--metrics-port", "0"], "--port"),
        (["--lora-dir", "/no/such/loras"], "--lora-dir /no/such/loras does not exist"),
        (["--embeddings-dir", "/no/such/embeddings"], "--embeddings-dir"),
        (["--lora-dir", __file__], "is not a folder"),
    ],
)
def test_bad_options_are_refused_before_ray_starts(
    shapes_bundle: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    assert sdrt_main(["serve", str(shapes_bundle), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "password" not in err


def test_what_a_local_ray_would_hang_on_is_refused_before_it_starts(
    shapes_bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    import ray

    from sdrt.cli.serve_checks import gpu_count

    cases = [(["--provider", "tensorrt"], "--provider")]
    if gpu_count() == 0:
        cases.append((["--gpus-per-replica", "1"], "no NVIDIA GPU"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases += [(["--port", str(port)], "in use"), (["--metrics-port", str(port)], "in use")]
        for extra, message in cases:
            assert sdrt_main(["serve", str(shapes_bundle), *extra]) == 2, extra
            err = capsys.readouterr().err
            assert message in err and len(err.strip().splitlines()) == 1, err
    assert not ray.is_initialized()  # nothing of Ray was started, so nothing is left behind


def test_bundles_are_checked_before_ray_starts(
    shapes_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert sdrt_main(["serve", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    other = tmp_path / "other" / shapes_bundle.name
    other.parent.mkdir()
    other.symlink_to(shapes_bundle)
    assert sdrt_main(["serve", str(shapes_bundle), str(other)]) == 2
    assert "rename one folder" in capsys.readouterr().err


def test_an_application_that_cannot_start_is_one_line_and_leaves_no_ray(
    shapes_bundle: Path, tmp_path: Path
) -> None:
    """A bundle whose UNet cannot load passes the checks, so Ray starts and its replica fails: one line, exit
    2, and Ray's processes (all in the command's session, or named by its Ray session folder) are gone."""
    psutil = pytest.importorskip("psutil")
    broken = tmp_path / shapes_bundle.name
    shutil.copytree(shapes_bundle, broken)
    for graph in broken.glob("*/unet.onnx"):
        graph.write_bytes(b"not a graph")
    command = [sys.executable, "-m", "sdrt.cli.sdrt", "serve", str(broken), "--port", str(free_port())]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2, err
    assert err.strip().splitlines()[-1].startswith("sdrt serve: error: the application did not start")

    def left() -> list[str]:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                mine = os.getsid(proc.pid) == process.pid or f"_{process.pid}/" in " ".join(
                    proc.info["cmdline"] or []
                )
            except (OSError, psutil.Error):
                continue
            if mine:
                found.append(" ".join(proc.info["cmdline"] or [])[:120])
        return found

    deadline = time.monotonic() + 30
    while left() and time.monotonic() < deadline:
        time.sleep(1)
    assert left() == []
