"""build-engine on depth-to-image folders: the depth estimator is optional (a bundle without it runs on given
depth maps, against diffusers), its processor's settings are required beside it and hashed with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.parity import assert_parity, build_bundle, injected_noise
from tests.runtime.pipelines.test_depth2img import depth_map, init_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")


def without(folder: Path, out: Path, *parts: str) -> Path:
    """A copy of the model folder whose model_index.json lists ``parts`` as None, their folders gone."""
    shutil.copytree(folder, out)
    index = json.loads((out / "model_index.json").read_text())
    for part in parts:
        index[part] = [None, None]
        shutil.rmtree(out / part)
    (out / "model_index.json").write_text(json.dumps(index))
    return out


@pytest.fixture(scope="module")
def no_estimator(model_folders, tmp_path_factory) -> tuple[Path, Path]:
    """(the folder without depth estimator, its bundle)."""
    root = tmp_path_factory.mktemp("depth_without_estimator")
    folder = without(model_folders("depth"), root / "model", "depth_estimator", "feature_extractor")
    bundle = build_bundle(
        folder, root / "bundle", ["--min-size", "32", "--max-size", "64", "--max-batch", "1"]
    )
    return folder, bundle


def test_a_folder_without_depth_estimator_builds_a_bundle_for_given_depth_maps(tiny, no_estimator):
    import sdrt.runtime
    from sdrt.export.model.folder import inspect_model_folder
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.errors import InputError

    folder, bundle_dir = no_estimator
    model = inspect_model_folder(folder)
    assert model.model_type == "depth" and "depth_estimator" not in [c.name for c in model.components]
    bundle = open_bundle(bundle_dir)
    assert "depth_estimator" not in bundle.components and not (bundle_dir / "feature_extractor").exists()
    pipe = sdrt.runtime.DiffusionPipeline.from_pretrained(bundle_dir, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.depth_estimator is None and pipe.feature_extractor is None
    kwargs = dict(image=init_image(), strength=0.75, num_inference_steps=4, output_type="np")
    with pytest.raises(InputError, match="pass `depth_map`"):
        pipe("a cat", **kwargs)
    ref = tiny.reference("depth", "StableDiffusionDepth2ImgPipeline")  # the same weights, with its DPT
    depth = depth_map(seed=5)
    with injected_noise(41) as rng:
        expected = ref("a cat", depth_map=torch.from_numpy(depth), **kwargs).images
    assert_parity(pipe("a cat", depth_map=depth, generator=rng, **kwargs).images, expected)


def test_a_depth_estimator_needs_its_processor(model_folders, tmp_path):
    from sdrt.export.errors import ModelFolderError
    from sdrt.export.model.folder import inspect_model_folder

    folder = without(model_folders("depth"), tmp_path / "model", "feature_extractor")
    with pytest.raises(ModelFolderError, match="needs its image processor"):
        inspect_model_folder(folder)


def test_the_processor_settings_decide_the_estimators_export(model_folders):
    from sdrt.export.model.folder import inspect_model_folder
    from sdrt.runtime.bundle.manifest import Shapes
    from sdrt.runtime.components import DepthEstimator

    model = inspect_model_folder(model_folders("depth"))
    assert DepthEstimator in model.components
    assert model.path / "feature_extractor" / "preprocessor_config.json" in model.hashed_files(
        "depth_estimator"
    )
    # keep_aspect_ratio: the input size ranges over what the bundle's image sizes resize to
    model.configs["feature_extractor"] = {"size": 384, "keep_aspect_ratio": True, "ensure_multiple_of": 32}
    shapes = Shapes(batch=(1, 2), height=(256, 768), width=(512, 768), default=(512, 512))
    ranges = DepthEstimator.dim_ranges(shapes, 8)
    spec = DepthEstimator.graph(model, ranges, DepthEstimator.trace_sizes(shapes, 8, ranges))
    sizes = [transformers_size(h, w) for h in shapes.height for w in shapes.width]
    assert spec.dims["dpt_height"] == (min(s[0] for s in sizes), max(s[0] for s in sizes))
    assert spec.dims["dpt_width"] == (min(s[1] for s in sizes), max(s[1] for s in sizes))
    assert (spec.trace["dpt_height"], spec.trace["dpt_width"]) == transformers_size(512, 512)
    assert spec.dims["depth_height"] == tuple(2 * d for d in spec.dims["dpt_height"])  # the tiny DPT doubles


def transformers_size(height: int, width: int) -> tuple[int, int]:
    """transformers' DPT resize rule (keep_aspect_ratio, multiple of 32, size 384) for an image size."""
    from transformers.models.dpt import image_processing_pil_dpt as dpt

    size = dpt.get_resize_output_image_size(np.zeros((3, height, width)), (384, 384), True, 32)
    return size.height, size.width


def test_a_new_processor_size_rebuilds_the_estimator_alone(model_folders, tmp_path):
    from sdrt.export.jobs import ExportSettings, plan_jobs
    from sdrt.export.model.folder import inspect_model_folder
    from sdrt.runtime.bundle.manifest import Shapes

    def hashes(folder: Path) -> dict[str, str]:
        model = inspect_model_folder(folder)
        shapes = Shapes(batch=(1, 1), height=(32, 64), width=(32, 64), default=(64, 64), size_multiple=16)
        jobs = plan_jobs(
            model,
            shapes,
            ExportSettings("ort", "cpu", "cpu", False, 17, False),
            precision="fp32",
            vae_fp32=False,
            tools={},
            options={},
            asked=None,
            previous=None,
            previous_dir=tmp_path,
        )
        return {job.name: job.inputs_hash for job in jobs}

    folder = tmp_path / "model"
    shutil.copytree(model_folders("depth"), folder)
    before = hashes(folder)
    settings = folder / "feature_extractor" / "preprocessor_config.json"
    config = json.loads(settings.read_text())
    settings.write_text(json.dumps({**config, "size": {"height": 48, "width": 48}}))
    after = hashes(folder)
    assert [name for name in before if before[name] != after[name]] == ["depth_estimator"]


def test_an_unknown_depth_estimator_class_is_refused(model_folders, tmp_path):
    from sdrt.export.errors import ModelFolderError
    from sdrt.export.model.folder import inspect_model_folder

    folder = tmp_path / "model"
    shutil.copytree(model_folders("depth"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["depth_estimator"] = ["transformers", "GLPNForDepthEstimation"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFolderError, match="GLPNForDepthEstimation"):
        inspect_model_folder(folder)
