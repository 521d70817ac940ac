import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "sd-shapes"


@pytest.fixture(scope="session")
def shapes_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model's bundle, built as README's first command builds it."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    out = tmp_path_factory.mktemp("serve_bundles") / "sd-shapes"
    command = [sys.executable, "-m", "sdrt.cli.build_engine", str(SHIPPED_MODEL), "-o", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="session")
def second_bundle(shapes_bundle: Path) -> Path:
    """The same bundle under another folder name: a second served model."""
    copy = shapes_bundle.with_name("sd-shapes-b")
    if not copy.exists():
        shutil.copytree(shapes_bundle, copy)
    return copy
