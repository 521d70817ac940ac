import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config: pytest.Config) -> None:
    """The engines' per-machine caches (ORT's optimized CPU graphs, OpenVINO's compiled models) in a folder
    of the session's own, not the user's ~/.cache; subprocesses inherit it."""
    os.environ["SDRT_CACHE_DIR"] = tempfile.mkdtemp(prefix="sdrt-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.get("SDRT_CACHE_DIR", ""), ignore_errors=True)


class ModelFolders:
    """Tiny diffusers model folders (tests/models.py), made once per session on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def __call__(self, kind: str) -> Path:
        if kind not in self._made:
            from tests.models import MAKERS
            from tests.sdxl_models import SDXL_MAKERS

            self._made[kind] = {**MAKERS, **SDXL_MAKERS}[kind](self.root / kind)
        return self._made[kind]


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    """``model_folders("sd1")`` -> path of a tiny, seeded SD 1.x folder (sd1 sd2 sdxl inpaint uncond depth,
    sdxl-refiner sdxl-inpaint)."""
    return ModelFolders(tmp_path_factory.mktemp("model_folders"))


@pytest.fixture(scope="session")
def tiny(model_folders: ModelFolders, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``tiny.bundle("sd1")``, ``tiny.pipeline("sd1", "StableDiffusionPipeline")``, ``tiny.reference(...)``:
    the tiny models' bundles and pipelines, with diffusers' on the same folders (tests/parity.py)."""
    for module in ("torch", "diffusers", "transformers", "onnxruntime"):
        pytest.importorskip(module)
    from tests.parity import TinyModels

    return TinyModels(tmp_path_factory.mktemp("tiny_bundles"), model_folders)


def _has_gpu_cupy() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cupy`` run only where CuPy sees a GPU; elsewhere they are not run at all
    (deselected, one line in the summary) rather than skipped one by one."""
    if _has_gpu_cupy():
        return
    gpu_only = [item for item in items if item.get_closest_marker("cupy")]
    if gpu_only:
        config.hook.pytest_deselected(items=gpu_only)
        items[:] = [item for item in items if not item.get_closest_marker("cupy")]


def pytest_report_header(config: pytest.Config) -> str:
    return "cupy tests: " + (
        "run (CuPy sees a GPU)" if _has_gpu_cupy() else "deselected (no CuPy with a GPU here)"
    )
