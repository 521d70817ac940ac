"""``sdrt serve``'s options: the config file Ray Serve's own schema accepts, and errors before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from sdrt.cli.sdrt import main as sdrt_main


def test_print_config_is_a_serve_deploy_config(shapes_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["serve", str(shapes_bundle), "--print-config", "--autoscale", "1:3", "--api-key", "secret"]
    assert sdrt_main([*argv, "--host", "0.0.0.0", "--port", "8123", "--max-batch-size", "8"]) == 0
    text = capsys.readouterr().out
    config = ServeDeploySchema.model_validate(yaml.safe_load(text))
    assert config.http_options.host == "0.0.0.0" and config.http_options.port == 8123
    (app,) = config.applications
    assert app.import_path == "sdrt.serve.application:build" and app.route_prefix == "/"
    assert app.args["bundles"] == [str(shapes_bundle.resolve())]
    assert app.args["autoscale"] == [1, 3] and app.args["max_batch_size"] == 8
    assert "secret" not in text


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
    ],
)
def test_bad_options_are_refused_before_ray_starts(
    shapes_bundle: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    assert sdrt_main(["serve", str(shapes_bundle), *extra]) == 2
    assert message in capsys.readouterr().err


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
