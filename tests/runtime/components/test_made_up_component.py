"""Adding a component is one class and one registry line: a made-up second UNet-like engine goes through
build-engine (export, validation gate, ORT graph, manifest record, TensorRT profile) and loads at run time,
with no other edit; its output matches diffusers' UNet on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.runtime import components
from sdrt.runtime.components import UNet

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")


class SecondUNet(UNet):
    """A made-up component: a second engine of the model's UNet, under its own name."""

    name = "unet_2"


def test_a_new_component_needs_one_class_and_a_registry_line(model_folders, tmp_path, monkeypatch) -> None:
    from sdrt.export import export_pipeline
    from sdrt.export.tensorrt.profiles import profile_for
    from sdrt.runtime.bundle.bundle import open_bundle

    monkeypatch.setattr(components, "COMPONENTS", [*components.COMPONENTS, SecondUNet])  # the registry line
    model = model_folders("sd1")
    out = tmp_path / "bundle"
    report = export_pipeline(
        model, out, components=["unet_2"], min_size=32, max_size=64, max_batch=1, progress=False
    )
    assert [c.name for c in report.components] == ["unet_2"]
    bundle = open_bundle(out)
    record = bundle.components["unet_2"]
    assert record.class_name == "UNet2DConditionModel" and (out / record.onnx).is_file()
    assert record.validation["metric"] == "max_rel_err" and record.validation["value"] <= 1e-4
    assert record.ort.file == "ort/unet_2.onnx" and (out / record.ort.file).is_file()
    assert profile_for(record, bundle.manifest).dims["batch"] == (1, 2, 2)  # guided: the prompt batch doubled

    unet_2 = components.open_component(bundle, "unet_2", "cpu")
    assert type(unet_2) is SecondUNet
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((2, 4, 8, 6)).astype(np.float32)
    hidden = rng.standard_normal((2, 77, unet_2.record.inputs["encoder_hidden_states"].shape[2])).astype(
        np.float32
    )
    actual = unet_2(sample, 500, hidden)
    reference = diffusers.UNet2DConditionModel.from_pretrained(model / "unet").eval()
    with torch.no_grad():
        expected = reference(torch.from_numpy(sample), 500, torch.from_numpy(hidden)).sample.numpy()
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()
