"""The CLIP vision encoder component through the export's gates (trace, clean-up, validation against torch, the
ORT graph) on a tiny ``CLIPVisionModelWithProjection``, its graphs against transformers at another batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")

SETTINGS = dict(
    hidden_size=32,
    intermediate_size=37,
    projection_dim=24,
    num_hidden_layers=3,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the encoder's folder, its record, the bundle work folder) after one export at batch 1..3."""
    from sdrt.export.component_build import build_component
    from sdrt.export.jobs import ComponentJob, ExportSettings
    from sdrt.export.model.folder import ModelFolder
    from sdrt.runtime.components import ImageEncoder, component_class

    root = tmp_path_factory.mktemp("image_encoder")
    torch.manual_seed(0)
    model = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(**SETTINGS)).eval()
    model.save_pretrained(root / "model" / "image_encoder")
    folder = ModelFolder(
        path=root / "model",
        pipeline_class="StableDiffusionImageVariationPipeline",
        model_type="sd1",
        classes={"image_encoder": ("transformers", "CLIPVisionModelWithProjection")},
        configs={"image_encoder": model.config.to_dict()},
    )
    assert component_class("image_encoder", "CLIPVisionModelWithProjection") is ImageEncoder
    job = ComponentJob(ImageEncoder, {"batch": (1, 3)}, {"batch": 2}, "fp32", "hash", asked=True)
    settings = ExportSettings("cpu", "cpu", "cpu", static=False, opset=17, validate=True)
    work = root / "bundle"
    record = build_component(folder, job, settings, work, root / "scratch")
    return root / "model" / "image_encoder", record, work


def test_the_export_gate_holds_the_graph_to_torch(built):
    _, record, work = built
    assert record.class_name == "CLIPVisionModelWithProjection"
    assert record.inputs["pixel_values"].shape == ("batch", 3, 32, 32)
    assert record.outputs["image_embeds"].shape == ("batch", 24)
    assert record.outputs["penultimate_hidden_states"].shape == ("batch", 17, 32)  # 4 x 4 patches + class
    assert record.validation["metric"] == "max_rel_err" and record.validation["value"] <= 1e-4
    assert (work / record.onnx).is_file() and (work / record.ort.file).is_file()


@pytest.mark.parametrize("graph", ["onnx", "ort"])
def test_the_graphs_match_transformers(built, graph):
    folder, record, work = built
    path = work / (record.onnx if graph == "onnx" else record.ort.file)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(5).uniform(-1.8, 2.1, size=(3, 3, 32, 32)).astype(np.float32)
    embeds, penultimate = session.run(["image_embeds", "penultimate_hidden_states"], {"pixel_values": pixels})
    reference = transformers.CLIPVisionModelWithProjection.from_pretrained(Path(folder)).eval()
    with torch.no_grad():
        out = reference(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    for actual, expected in ((embeds, out.image_embeds), (penultimate, out.hidden_states[-2])):
        expected = expected.numpy()
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()
