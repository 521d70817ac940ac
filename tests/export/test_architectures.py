"""build-engine on a tiny model of each architecture; every graph checked against torch.

The check (tests/export/reference.py) loads the torch modules itself and compares at two image sizes
and two batches, independently of the export's own validation gate.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sdrt.cli.build_engine import main  # noqa: E402
from tests.export.reference import check_bundle  # noqa: E402

EXPECTED = {
    "sd1": ("sd1", "epsilon", ["text_encoder", "unet", "vae_encoder", "vae_decoder"]),
    "sd2": ("sd2", "v_prediction", ["text_encoder", "unet", "vae_encoder", "vae_decoder"]),
    "sdxl": ("sdxl", "epsilon", ["text_encoder", "text_encoder_2", "unet", "vae_encoder", "vae_decoder"]),
    "inpaint": ("inpaint", "epsilon", ["text_encoder", "unet", "vae_encoder", "vae_decoder"]),
    "uncond": ("uncond", "epsilon", ["unet"]),
}
# (prompt batch, height, width): two sizes (one non-square), two batches
CASES = {kind: [(1, 32, 32), (2, 64, 48)] for kind in EXPECTED}
CASES["uncond"] = [(1, 16, 16), (2, 32, 24)]
SIZE_OPTIONS = {kind: ["--min-size", "32", "--max-size", "64"] for kind in EXPECTED}
SIZE_OPTIONS["uncond"] = ["--min-size", "16", "--max-size", "32"]
OUTPUTS = {
    "text_encoder": ["last_hidden_state"],
    "text_encoder_2": ["last_hidden_state", "penultimate_hidden_state", "text_embeds"],
    "unet": ["noise_pred"],
    "vae_encoder": ["moments"],
    "vae_decoder": ["image"],
}


# sd1 and sdxl (the two UNet and text-encoder layouts) in the default run; sd2, inpaint and uncond under -m slow
# (their bundles are built and compared with diffusers' images by the pipeline tests too)
QUICK_KINDS = {"sd1", "sdxl"}


@pytest.mark.parametrize(
    "kind", [k if k in QUICK_KINDS else pytest.param(k, marks=pytest.mark.slow) for k in EXPECTED]
)
def test_build_engine_matches_torch(kind, model_folders, tmp_path):
    model_dir = model_folders(kind)
    bundle = tmp_path / "engines" / kind
    code = main(
        [str(model_dir), "-o", str(bundle), "--backend", "ort", "--max-batch", "2", "-q", *SIZE_OPTIONS[kind]]
    )
    assert code == 0

    model_type, prediction, components = EXPECTED[kind]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model_type"] == model_type
    assert manifest["prediction_type"] == prediction
    assert list(manifest["components"]) == components
    for name, record in manifest["components"].items():
        outputs = OUTPUTS[name] + (
            ["penultimate_hidden_state"] if name == "text_encoder" and kind == "sdxl" else []
        )
        assert sorted(record["outputs"]) == sorted(outputs)
        assert (bundle / record["onnx"]).is_file() and (bundle / record["ort"]["file"]).is_file()
        assert record["validation"]["metric"] == "max_rel_err"
        assert record["validation"]["value"] <= 1e-4
        assert record["inputs_hash"]
        assert record["opset"] >= 17
    if kind != "uncond":
        assert (bundle / "tokenizer" / "vocab.json").is_file() and (
            bundle / "tokenizer" / "merges.txt"
        ).is_file()
    if kind == "sdxl":
        assert (bundle / "tokenizer_2" / "vocab.json").is_file()
        assert manifest["components"]["unet"]["inputs"]["time_ids"]["shape"] == ["batch", 6]
    if kind == "inpaint":
        assert manifest["components"]["unet"]["inputs"]["sample"]["shape"][1] == 9
    scheduler = json.loads((bundle / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler == json.loads((model_dir / "scheduler" / "scheduler_config.json").read_text())

    for graphs in ("onnx", "ort"):
        worst = check_bundle(model_dir, bundle, CASES[kind], graphs=graphs)
        assert worst and all(v <= 1e-4 for v in worst.values()), (graphs, worst)
