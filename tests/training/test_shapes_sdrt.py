"""The shipped default model through sdrt: README's quick start, and issue 7's bar on sdrt's runtime.

The bundle is built by the command README.md gives (``build-engine models/sd-shapes -o ...``) and
images are made by README's ``sdrt generate`` command, both run as console scripts; then the same
cases as the diffusers test go through sdrt's runtime (ONNX Runtime, CPU) and the checker reads them.
"""

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from training.evaluate_shapes import evaluation_cases, generate_sdrt, load_sdrt_pipeline, score_images
from training.shapes_checker import check_image

from .test_shapes_model import MODEL_DIR, _subset

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start_commands() -> list[list[str]]:
    """README's first command, split at ``&&``: the setup, then the main job."""
    block = re.search(r"```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README.md has no bash block"
    return [shlex.split(part) for part in block.group(1).split("&&")]


def _main_job(bundle: Path, png: Path) -> tuple[list[str], list[str]]:
    """README's build-engine and sdrt generate commands, writing into ``bundle`` and ``png``."""
    commands = quick_start_commands()
    build = next(c for c in commands if c[0] == "build-engine")
    generate = next(c for c in commands if c[:2] == ["sdrt", "generate"])
    assert build[1] == "models/sd-shapes", build
    out = build[build.index("-o") + 1]
    assert generate[2] == out, (build, generate)
    build = [*build[:-1], str(bundle)] + ["-q"]
    generate = [*generate[:2], str(bundle), *generate[3:]]
    generate[generate.index("-o") + 1] = str(png)
    return build, generate


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("quick_start")
    build, generate = _main_job(work / "sd-shapes", work / "red-circle.png")
    root = README.parent
    subprocess.run(build, cwd=root, check=True, capture_output=True, text=True, timeout=600)
    done = subprocess.run(
        [*generate, "--no-progress"], cwd=root, check=True, capture_output=True, text=True, timeout=600
    )
    return work / "sd-shapes", work / "red-circle.png", done.stdout


def test_readme_first_command_sets_up_then_builds_and_generates():
    commands = quick_start_commands()
    assert commands[0] == ["pip", "install", "torch==2.13.0"]
    assert commands[1][:3] == ["pip", "install", "-e"]
    assert [c[0] for c in commands[2:]] == ["build-engine", "sdrt"]


def test_readme_main_job_writes_the_asked_picture(readme_run):
    _, png, stdout = readme_run
    assert stdout.strip().splitlines()[-1] == str(png)
    read = check_image(Image.open(png))
    assert (read.colour, read.shape) == ("red", "circle"), read


def test_six_cases_mostly_right_in_sdrt(readme_run):
    bundle, _, _ = readme_run
    cases = _subset()
    scores = score_images(
        generate_sdrt(load_sdrt_pipeline(bundle), cases), [(c.shape, c.colour) for c in cases]
    )
    assert scores["colour"] >= 5 / 6, scores["results"]
    assert scores["shape"] >= 5 / 6, scores["results"]


def test_sdrt_generate_defaults_draw_every_pair(readme_run):
    """``sdrt generate`` with no options (the bundle's scheduler, 50 steps, guidance 7.5): the checker reads
    the asked colour and shape in at least 90% of the 18 (shape, colour) pairs, one seeded picture each."""
    from sdrt.runtime import DiffusionPipeline

    bundle, _, _ = readme_run
    cases = evaluation_cases(1)
    pipe = DiffusionPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    images = pipe([c.prompt for c in cases], generator=[c.seed for c in cases]).images
    scores = score_images(images, [(c.shape, c.colour) for c in cases])
    right = [r["shape"] == r["read_shape"] and r["colour"] == r["read_colour"] for r in scores["results"]]
    assert len(right) == 18 and sum(right) >= 0.9 * 18, scores["results"]


@pytest.mark.slow
def test_full_sweep_meets_issue_7_in_sdrt(readme_run):
    bundle, _, _ = readme_run
    cases = evaluation_cases(5)
    scores = score_images(
        generate_sdrt(load_sdrt_pipeline(bundle), cases), [(c.shape, c.colour) for c in cases]
    )
    assert scores["colour"] >= 0.90, scores
    assert scores["shape"] >= 0.80, scores


def test_model_folder_is_the_one_readme_builds():
    assert MODEL_DIR == README.parent / "models" / "sd-shapes"
