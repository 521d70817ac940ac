"""The built wheel installs into a fresh virtual environment and maps the three parts into ``sdrt``."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_in_fresh_venv(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = wheel_dir.glob("sdrt-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        "sdrt/export/model/configs/sdxl/text_encoder_2/config.json",
        "sdrt/export/model/configs/clip/vocab.json",
    ]
    assert not set(shipped) - names, "the shipped model configurations are missing from the wheel"
    page = {f"sdrt/serve/web/{p.name}" for p in (ROOT / "serve" / "web").iterdir()}
    assert "sdrt/serve/web/index.html" in page and not page - names, (
        "sdrt serve's web page is missing from the wheel"
    )

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], check=True
    )
    probe = (
        "import sdrt.schedulers, sdrt.runtime, sdrt.export, sys\n"
        "for m in (sdrt.schedulers, sdrt.runtime, sdrt.export): print(m.__file__)\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    files = out.stdout.split()
    assert len(files) == 3
    for file in files:
        assert Path(file).is_relative_to(env_dir), f"{file} was not imported from the installed wheel"


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """setuptools packs only the packages pyproject.toml lists (the folders map onto ``sdrt.*``)."""
    tomllib = __import__("pytest").importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    parts = ("cli", "export", "runtime", "schedulers", "serve")
    folders = {
        "sdrt." + ".".join(p.parent.relative_to(ROOT).parts)
        for part in parts
        for p in (ROOT / part).glob("**/__init__.py")
    }
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_the_run_extras_hold_what_the_runtime_imports() -> None:
    """README: ``pip install sdrt[cpu]`` (or ``[cuda]``) and a bundle are enough, run-time LoRA and textual
    inversion included: every package the runtime imports for ONNX Runtime bundles is in those extras."""
    import re

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    imported = {
        match
        for path in (ROOT / "runtime").rglob("*.py")
        for match in re.findall(r"^\s*(?:import|from) (onnx)\b", path.read_text(), re.MULTILINE)
    }
    assert imported == {"onnx"}  # run-time LoRA and textual inversion read the graphs' initializers
    for extra, runtime_package in (("cpu", "onnxruntime"), ("cuda", "onnxruntime-gpu")):
        names = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in extras[extra]}
        assert {"onnx", runtime_package} <= names, extra
