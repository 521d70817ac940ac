"""The weight map build-engine records for run-time LoRA: every Linear and Conv2d weight of the UNet and
the text encoder found in each graph of the bundle, holding torch's values (as stored or transposed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
onnx = pytest.importorskip("onnx")


def _initializers(path):
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.parametrize("name", ["unet", "text_encoder"])
def test_every_linear_and_conv_weight_is_located_with_torch_values(tiny, name):
    bundle = tiny.bundle("sd1")
    manifest = json.loads((bundle / "manifest.json").read_text())
    weights_file = manifest["components"][name]["weights"]
    data = json.loads((bundle / weights_file).read_text())
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    module = getattr(pipe, name)
    expected = {
        f"{n}.weight": m.weight.detach().numpy()
        for n, m in module.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
    }
    found = {p.removeprefix("text_model.") for p in data["parameters"]}
    assert found == {p.removeprefix("text_model.") for p in expected}
    assert sorted(data["graphs"]) == [f"onnx/{name}.onnx", f"ort/{name}.onnx"]
    for graph, located in data["graphs"].items():
        values = _initializers(bundle / graph)
        assert len(located) == len(expected), graph  # a CPU fp32 graph keeps every weight whole
        for parameter, (initializer, layout) in located.items():
            value = values[initializer].T if layout == "T" else values[initializer]
            np.testing.assert_array_equal(value, expected[parameter], err_msg=f"{graph}: {parameter}")


def test_components_lora_does_not_touch_have_no_map(tiny):
    manifest = json.loads((tiny.bundle("sd1") / "manifest.json").read_text())
    assert "weights" not in manifest["components"]["vae_decoder"]
