"""The depth estimator component against transformers' ``DPTForDepthEstimation``, and what the bundle
records of it and of its processor."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_the_engine_matches_transformers(tiny, model_folders):
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.components import DepthEstimator, open_component

    estimator = open_component(open_bundle(tiny.bundle("depth")), "depth_estimator", "cpu")
    assert type(estimator) is DepthEstimator
    pixel_values = np.random.default_rng(3).uniform(-1, 1, size=(2, 3, 32, 32)).astype(np.float32)
    actual = estimator(pixel_values)
    reference = transformers.DPTForDepthEstimation.from_pretrained(model_folders("depth") / "depth_estimator")
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(pixel_values)).predicted_depth.numpy()
    assert actual.shape == expected.shape == (2, 64, 64)
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


def test_the_bundle_records_the_estimator_and_its_processor(tiny, model_folders):
    from sdrt.runtime.bundle.bundle import open_bundle

    bundle = open_bundle(tiny.bundle("depth"))
    assert (
        bundle.model_type == "depth" and bundle.manifest.pipeline_class == "StableDiffusionDepth2ImgPipeline"
    )
    record = bundle.components["depth_estimator"]
    assert record.class_name == "DPTForDepthEstimation"
    assert record.inputs["pixel_values"].shape == ("batch", 3, "dpt_height", "dpt_width")
    assert record.outputs["predicted_depth"].shape == ("batch", "depth_height", "depth_width")
    assert record.dims["dpt_height"] == (32, 32) and record.dims["depth_width"] == (64, 64)
    settings = "feature_extractor/preprocessor_config.json"
    copied = json.loads((bundle.path / settings).read_text())
    assert copied == json.loads((model_folders("depth") / settings).read_text())
