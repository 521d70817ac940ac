"""Where LoRA layers land: a bundle built for the CUDA provider (fused attention packs Q/K/V, convolutions
turn NHWC) maps every weight in its exported graph but not all in its ORT graph; a LoRA on attention is
then refused by name for that graph, and placed for the other."""

from __future__ import annotations

import json

import pytest

from sdrt.runtime.errors import InputError
from sdrt.runtime.lora.files import read_lora
from sdrt.runtime.lora.weights import WeightMap, resolve
from tests.lora_files import diffusers_lora_file
from tests.parity import BUILD_OPTIONS, build_bundle

pytest.importorskip("torch")
pytest.importorskip("peft")


def test_packed_attention_weights_are_refused_by_name(tiny, tmp_path):
    from sdrt.runtime.bundle.bundle import open_bundle

    options = [
        *BUILD_OPTIONS["sd1"],
        "--device",
        "cuda",
        "--precision",
        "fp16",
        "--components",
        "text_encoder",
        "unet",
    ]
    bundle = open_bundle(build_bundle(tiny.model("sd1"), tmp_path / "cuda", options))
    record = bundle.record("unet")
    located = json.loads((bundle.path / record.weights).read_text())["graphs"]
    assert len(located["onnx/unet.onnx"]) > len(located["ort/unet.onnx"])
    lora = read_lora(diffusers_lora_file(tmp_path, tiny.model("sd1"), 3))
    maps = {
        c: WeightMap.read(
            bundle.path, bundle.record(c), "ort/unet.onnx" if c == "unet" else "onnx/text_encoder.onnx"
        )
        for c in ("unet", "text_encoder")
    }
    with pytest.raises(
        InputError, match=r"attn1\.to_(q|k|v)\.weight in ort/unet\.onnx .* build-engine --lora"
    ):
        resolve(lora, maps)
    maps["unet"] = WeightMap.read(bundle.path, record, "onnx/unet.onnx")
    placed = resolve(lora, maps)
    assert sum(len(v) for v in placed.values()) == len(lora)
