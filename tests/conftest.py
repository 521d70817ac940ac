import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class ModelFolders:
    """Tiny diffusers model folders (tests/models.py), made once per session on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def __call__(self, kind: str) -> Path:
        if kind not in self._made:
            from tests.models import MAKERS

            self._made[kind] = MAKERS[kind](self.root / kind)
        return self._made[kind]


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    """``model_folders("sd1")`` -> path of a tiny, seeded SD 1.x folder (sd1 sd2 sdxl inpaint uncond)."""
    return ModelFolders(tmp_path_factory.mktemp("model_folders"))
