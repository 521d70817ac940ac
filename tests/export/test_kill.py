"""A build killed at any moment never costs the bundle: ``build-engine`` is SIGKILLed at moments spread
over a build into a new and into an existing output (and, by the test hook, between the swap's two
renames); the folder is then either the complete old bundle, the complete new one, or (for a new
output) absent; a normal build afterwards gives a complete bundle that generates."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from sdrt.runtime.bundle import swap  # noqa: E402
from sdrt.runtime.bundle.bundle import open_bundle  # noqa: E402
from sdrt.runtime.bundle.integrity import file_problems  # noqa: E402

MOMENTS = 10


def build(model: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    command = [shutil.which("build-engine"), str(model), "-o", str(out), "-q", "--max-batch", "1", *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def complete(out: Path) -> bool:
    """A bundle whose manifest reads and whose every file matches its recorded size and sha256."""
    bundle = open_bundle(out)  # repairs an interrupted swap first, as any load does
    return all(not file_problems(out, r, hashes=True) for r in bundle.components.values())


def generates(out: Path) -> bool:
    command = [
        shutil.which("sdrt"),
        "generate",
        str(out),
        "--steps",
        "1",
        "--no-progress",
        "-o",
        str(out.parent / "x.png"),
    ]
    return subprocess.run(command, capture_output=True, timeout=120).returncode == 0


@pytest.fixture(scope="module")
def old_bundle(model_folders, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """The model, a complete bundle of it, and how long a build of it takes."""
    model = model_folders("uncond")
    out = tmp_path_factory.mktemp("old") / "bundle"
    started = time.perf_counter()
    assert build(model, out).wait(timeout=300) == 0
    return model, out, time.perf_counter() - started


# Two moments in the default run (early, with an old bundle, and the swap hook); the other nine under -m slow:
# each moment is a killed build plus a full rebuild.
QUICK_MOMENTS = {0, MOMENTS}


@pytest.mark.parametrize(
    "moment",
    [m if m in QUICK_MOMENTS else pytest.param(m, marks=pytest.mark.slow) for m in range(MOMENTS + 1)],
)
def test_killed_build_leaves_old_or_new_bundle(old_bundle, tmp_path, moment) -> None:
    model, old, seconds = old_bundle
    existing = moment % 2 == 0
    out = tmp_path / "engines" / "bundle"
    out.parent.mkdir()
    if existing:
        shutil.copytree(old, out)
    if moment == MOMENTS:  # the test hook: killed between the swap's two renames
        env = {**os.environ, "SDRT_TEST_KILL_AT": "between-renames"}
        process = build(model, out, "--force", env=env)
        assert process.wait(timeout=300) == -signal.SIGKILL
    else:
        process = build(model, out, "--force")
        time.sleep(seconds * (0.3 + 0.7 * moment / MOMENTS))  # from the export's start to its swap
        process.kill()
        process.wait(timeout=60)
    if existing or out.exists() or swap.complete_temps(out):
        assert complete(out), f"killed at moment {moment}: {sorted(p.name for p in out.parent.iterdir())}"
    assert build(model, out).wait(timeout=300) == 0
    assert complete(out) and generates(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["bundle", "x.png"]


# suite time (15 s)
@pytest.mark.slow
def test_two_builds_into_one_output(old_bundle, tmp_path) -> None:
    """The second waits for the first (its working folder is not deleted); the result is complete."""
    model, _, _ = old_bundle
    out = tmp_path / "bundle"
    first, second = build(model, out, "--force"), build(model, out, "--force")
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0, second.stderr.read().decode()
    assert complete(out) and generates(out)


def test_killed_during_the_cleanup_leaves_no_restorable_old_folder(old_bundle, tmp_path) -> None:
    """Killed while deleting the replaced bundle: what is left is a ``.trash-`` folder, never an ``.old-``
    one that recovery would take for the bundle; the bundle is the new one, the next build removes it."""
    model, old, _ = old_bundle
    out = tmp_path / "bundle"
    shutil.copytree(old, out)
    env = {**os.environ, "SDRT_TEST_KILL_AT": "during-cleanup"}
    assert build(model, out, "--force", env=env).wait(timeout=300) == -signal.SIGKILL
    assert swap.old_folders(out) == [] and swap.trash_folders(out)
    assert complete(out)  # the new bundle, whole
    swap.recover_swap(out)  # as the next build does
    assert swap.trash_folders(out) == [] and complete(out)
