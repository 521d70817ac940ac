"""Adding a model type is one Family and one registry row: a made-up type, recognised from a made-up diffusers
folder class, with a made-up task run by a pipeline defined here, builds (build refuses nothing, records the
type) and ``DiffusionPipeline.from_pretrained`` picks that pipeline, with no edit to sdrt; its image matches
diffusers' StableDiffusionPipeline on the same weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sdrt.runtime import StableDiffusionPipeline, families
from sdrt.runtime.families import CLIP_SKIP, Family
from sdrt.runtime.families.sd import SD_PARTS
from tests.parity import assert_parity, initial_latents

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

MADE_UP_TASK = "made-up-text-to-image"


class MadeUpPipeline(StableDiffusionPipeline):
    """A made-up pipeline: SD's text-to-image under another name."""


MADE_UP = Family(
    name="made-up",
    title="made-up",
    folder_pipelines=("MadeUpDiffusionPipeline",),
    required=SD_PARTS,
    support=("tokenizer",),
    features=frozenset({CLIP_SKIP}),
    tasks={MADE_UP_TASK: f"{__name__}:MadeUpPipeline"},
)


def test_a_new_model_type_needs_one_family_and_a_registry_row(model_folders, tmp_path, monkeypatch) -> None:
    from sdrt.export import export_pipeline
    from sdrt.runtime import DiffusionPipeline

    monkeypatch.setattr(families, "FAMILIES", [*families.FAMILIES, MADE_UP])  # the registry row
    model = tmp_path / "made-up-model"
    shutil.copytree(model_folders("sd1"), model)
    index = json.loads((model / "model_index.json").read_text())
    (model / "model_index.json").write_text(json.dumps({**index, "_class_name": "MadeUpDiffusionPipeline"}))

    out = tmp_path / "bundle"
    export_pipeline(
        model, out, backend="ort", min_size=64, max_size=64, max_batch=1, validate=False, progress=False
    )
    pipe = DiffusionPipeline.from_pretrained(out, provider="cpu")
    assert type(pipe) is MadeUpPipeline and pipe.bundle.model_type == "made-up"
    assert families.task_pipeline(pipe.bundle, MADE_UP_TASK) is MadeUpPipeline

    latents = initial_latents((1, 4, 8, 8))
    actual = pipe("a red circle", num_inference_steps=3, latents=latents, output_type="np").images
    reference = diffusers.StableDiffusionPipeline.from_pretrained(model_folders("sd1"))
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        "a red circle", num_inference_steps=3, latents=torch.from_numpy(latents), output_type="np"
    ).images
    assert_parity(actual, expected)
    assert np.asarray(actual).shape == (1, 64, 64, 3)


def test_a_type_no_pipeline_runs_is_refused_before_the_build(model_folders, tmp_path, monkeypatch) -> None:
    """A type whose family has no task yet exports nothing: the build says so, by name, first."""
    from sdrt.export import export_pipeline
    from sdrt.export.errors import ModelFolderError

    taskless = Family(
        name="taskless",
        title="taskless",
        folder_pipelines=("TasklessDiffusionPipeline",),
        required=SD_PARTS,
        support=("tokenizer",),
    )
    monkeypatch.setattr(families, "FAMILIES", [*families.FAMILIES, taskless])
    model = tmp_path / "taskless"
    shutil.copytree(model_folders("sd1"), model)
    index = json.loads((model / "model_index.json").read_text())
    (model / "model_index.json").write_text(json.dumps({**index, "_class_name": "TasklessDiffusionPipeline"}))
    with pytest.raises(ModelFolderError, match="'taskless' model .*sdrt cannot run taskless models yet"):
        export_pipeline(model, tmp_path / "bundle", progress=False)
    assert not (tmp_path / "bundle").exists()
