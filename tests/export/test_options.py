"""fp16 conversion, static shapes, and the cheap import of sdrt.export."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from sdrt.export import export_pipeline  # noqa: E402
from tests.export.reference import make_feeds, torch_outputs  # noqa: E402


def _psnr(actual, expected):
    mse = np.mean((actual.astype(np.float64) - expected) ** 2)
    return 10 * np.log10(np.abs(expected).max() ** 2 / mse)


def test_fp16_unet_and_vae_fp32(model_folders, tmp_path):
    import onnxruntime as ort

    model = model_folders("sd1")
    out = tmp_path / "fp16"
    export_pipeline(
        model,
        out,
        backend="onnx",
        precision="fp16",
        vae_fp32=True,
        components=["unet", "vae_decoder"],
        min_size=32,
        max_size=64,
        max_batch=2,
        progress=False,
    )
    m = json.loads((out / "manifest.json").read_text())
    unet = m["components"]["unet"]
    assert unet["precision"] == "fp16" and unet["validation"]["metric"] == "psnr_db"
    assert unet["validation"]["value"] >= 35
    assert m["components"]["vae_decoder"]["precision"] == "fp32"
    graph = onnx.load(str(out / unet["onnx"]))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    inits = {t.name: t for t in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type == "Resize" and len(node.input) > 2 and node.input[2] in inits:
            assert inits[node.input[2]].data_type == onnx.TensorProto.FLOAT
    # independent check against torch fp32
    feeds = make_feeds(unet, batch=2, height=64, width=48, vae_scale=8, seed=3)
    actual = ort.InferenceSession(str(out / unet["onnx"]), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]
    assert _psnr(actual, torch_outputs(model, "unet", feeds, "sd1")["noise_pred"]) >= 35


def test_static_shapes(model_folders, tmp_path):
    out = tmp_path / "static"
    export_pipeline(
        model_folders("sd1"),
        out,
        backend="onnx",
        static=True,
        height=64,
        width=48,
        batch=1,
        components=["unet", "vae_decoder"],
        progress=False,
    )
    m = json.loads((out / "manifest.json").read_text())
    unet = m["components"]["unet"]
    assert unet["static"] and unet["inputs"]["sample"]["shape"] == [2, 4, 8, 6]
    assert m["components"]["vae_decoder"]["outputs"]["image"]["shape"] == [1, 3, 64, 48]
    graph = onnx.load(str(out / unet["onnx"]))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 4, 8, 6]


def test_import_is_cheap():
    code = "import sys, sdrt.export; from sdrt.export import export_pipeline, build_engines; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
