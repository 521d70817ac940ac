"""OpenVINO bundles of the tiny models (``build-engine --backend openvino``) against diffusers in fp32 torch:
fp32 IR within the 40 dB parity bar, bf16 inference within 25 dB (bf16 keeps 8 bits of mantissa)."""

from __future__ import annotations

import json

import pytest

from tests.parity import BUILD_OPTIONS, PSNR_DB, assert_parity, initial_latents, injected_noise

torch = pytest.importorskip("torch")
pytest.importorskip("openvino")

BF16_DB = 25.0
STEPS = 4


def _build(model_dir, out, kind: str, precision: str):
    from sdrt.cli.build_engine import main as build_engine

    args = [str(model_dir), "-o", str(out), "--backend", "openvino", "--precision", precision, "-q"]
    assert build_engine([*args, *BUILD_OPTIONS[kind]]) in (0, None)
    return out


@pytest.fixture(scope="module")
def ov_bundles(model_folders, tmp_path_factory):
    """(kind, precision) -> bundle, built on first use."""
    root, built = tmp_path_factory.mktemp("openvino"), {}

    def bundle(kind: str, precision: str = "fp32"):
        if (kind, precision) not in built:
            built[kind, precision] = _build(
                model_folders(kind), root / f"{kind}_{precision}", kind, precision
            )
        return built[kind, precision]

    return bundle


def _pipeline(bundle, class_name: str):
    import sdrt.runtime

    pipe = getattr(sdrt.runtime, class_name).from_pretrained(bundle, provider="openvino")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize(("precision", "threshold"), [("fp32", PSNR_DB), ("bf16", BF16_DB)])
def test_sd1_text_to_image(tiny, ov_bundles, precision, threshold):
    ref = tiny.reference("sd1", "StableDiffusionPipeline")
    pipe = _pipeline(ov_bundles("sd1", precision), "StableDiffusionPipeline")
    latents = initial_latents((2, 4, 8, 8), seed=3)
    kwargs = dict(negative_prompt=["blue square"] * 2, num_inference_steps=STEPS)
    with injected_noise(4) as rng:
        expected = ref(["a red circle"] * 2, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(["a red circle"] * 2, latents=latents, generator=rng, **kwargs).images
    assert_parity(actual, expected, threshold)


def test_sd1_image_to_image_uses_the_vae_encoder(tiny, ov_bundles):
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    ref = tiny.reference("sd1", "StableDiffusionImg2ImgPipeline")
    pipe = _pipeline(ov_bundles("sd1"), "StableDiffusionImg2ImgPipeline")
    kwargs = dict(image=image, strength=0.6, num_inference_steps=STEPS)
    expected = ref("a red circle", generator=torch.Generator().manual_seed(8), **kwargs).images
    actual = pipe("a red circle", generator=8, **kwargs).images
    assert_parity(actual, expected, PSNR_DB)


def test_static_shapes_compile_per_image_size(tiny, ov_bundles, monkeypatch):
    """SDRT_OPENVINO_STATIC_SHAPES=1: every engine compiled for the call's shapes (the latest two kept), each
    image size within the parity bar of diffusers' (fp32 torch)."""
    monkeypatch.setenv("SDRT_OPENVINO_STATIC_SHAPES", "1")
    ref = tiny.reference("sd1", "StableDiffusionPipeline")
    pipe = _pipeline(ov_bundles("sd1"), "StableDiffusionPipeline")
    engine = pipe.unet.engine
    assert engine.static_shapes and engine.static_variants == []
    for size in (64, 48, 32):
        kwargs = dict(height=size, width=size, num_inference_steps=STEPS)
        expected = ref("a red circle", generator=torch.Generator().manual_seed(5), **kwargs).images
        actual = pipe("a red circle", generator=5, **kwargs).images
        assert_parity(actual, expected, PSNR_DB)
    # the UNet with guidance: batch 2 at the last two latent sizes, compiled with every input static
    assert [shapes[0] for shapes in engine.static_variants] == [(2, 4, 6, 6), (2, 4, 4, 4)]
    for shapes in engine.static_variants:
        compiled = engine.static_variant([torch.zeros(s).numpy() for s in shapes])
        assert all(p.get_partial_shape().is_static for p in compiled.inputs)
    monkeypatch.setenv("SDRT_OPENVINO_STATIC_SHAPES", "maybe")
    with pytest.raises(Exception, match="SDRT_OPENVINO_STATIC_SHAPES='maybe'"):
        _pipeline(ov_bundles("sd1"), "StableDiffusionPipeline")


def test_cli_static_shapes(tiny, ov_bundles, tmp_path, monkeypatch, caplog):
    """``sdrt generate --static-shapes`` compiles the engines for the image's shapes; the PNG is diffusers'."""
    import logging

    from PIL import Image

    from sdrt.cli.sdrt import main

    monkeypatch.setenv("SDRT_OPENVINO_STATIC_SHAPES", "0")  # restored after the CLI turns it on
    out = tmp_path / "static.png"
    argv = [
        "generate",
        str(ov_bundles("sd1")),
        "a red circle",
        "--steps",
        "3",
        "--seed",
        "7",
        "--size",
        "48x48",
    ]
    with caplog.at_level(logging.INFO, logger="sdrt.runtime.engines.openvino.engine"):
        assert (
            main([*argv, "--provider", "openvino", "--static-shapes", "--no-progress", "-o", str(out)]) == 0
        )
    assert "unet: compiling OpenVINO's graph for input shapes ((2, 4, 6, 6)" in caplog.text
    ref = tiny.reference("sd1", "StableDiffusionPipeline")
    kwargs = dict(height=48, width=48, num_inference_steps=3, generator=torch.Generator().manual_seed(7))
    assert_parity([Image.open(out)], ref("a red circle", **kwargs).images)


def test_sdxl_two_text_encoders(tiny, ov_bundles):
    ref = tiny.reference("sdxl", "StableDiffusionXLPipeline")
    pipe = _pipeline(ov_bundles("sdxl"), "StableDiffusionXLPipeline")
    kwargs = dict(prompt_2="a blue square", num_inference_steps=STEPS, guidance_scale=6.0)
    expected = ref("a red circle", generator=torch.Generator().manual_seed(99), **kwargs).images
    actual = pipe("a red circle", generator=99, **kwargs).images
    assert_parity(actual, expected, PSNR_DB)


def test_unconditional_unet(tiny, ov_bundles):
    ref = tiny.reference("uncond", "DDPMPipeline")
    pipe = _pipeline(ov_bundles("uncond"), "DDPMPipeline")
    expected = ref(batch_size=2, num_inference_steps=6, generator=torch.Generator().manual_seed(5)).images
    actual = pipe(batch_size=2, num_inference_steps=6, generator=5).images
    assert_parity(actual, expected, PSNR_DB)


def test_manifest_records_the_ir_and_its_gate(ov_bundles):
    bundle = ov_bundles("sd1", "bf16")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["backend"] == "openvino"
    for name in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
        record = manifest["components"][name]["openvino"]
        assert record["file"] == f"openvino/{name}.xml" and record["precision"] == "bf16"
        assert (bundle / record["file"]).is_file() and (bundle / record["file"]).with_suffix(".bin").is_file()
        gate = record["validation"]
        assert gate["metric"] == "psnr_db" and gate["threshold"] == 30.0 and gate["value"] >= 30.0


def test_auto_prefers_openvino_on_a_cpu_when_the_bundle_has_ir(ov_bundles):
    from sdrt.runtime import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(ov_bundles("sd1"))
    assert pipe.provider == "openvino"
    assert type(pipe.unet.engine).__name__ == "OpenVinoEngine"


def test_inspect_lists_the_ir(ov_bundles, capsys):
    from sdrt.cli.sdrt import main

    assert main(["inspect", str(ov_bundles("sd1", "bf16"))]) in (0, None)
    lines = capsys.readouterr().out.splitlines()
    for name in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
        line = next(x for x in lines if x.strip().startswith(name + " "))
        assert "openvino-bf16" in line, line
    assert any(x.split() == ["openvino", "yes"] for x in lines), lines


def test_model_cache_is_written_and_reused_per_precision(ov_bundles, tmp_path, monkeypatch):
    """One cache folder per inference precision: OpenVINO's cache key leaves the precision hint out, and a bf16
    compile handed the fp32 blob gave NaN in every row of the text encoder on a CPU with AMX."""
    import numpy as np

    from sdrt.runtime.engines.openvino.engine import OpenVinoEngine

    xml = ov_bundles("sd1") / "openvino" / "text_encoder.xml"
    ids = {"input_ids": np.random.default_rng(0).integers(0, 500, (2, 77)).astype(np.int32)}

    def blobs():
        return sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.blob"))

    OpenVinoEngine(xml, "fp32", cache_dir=tmp_path)
    cached = blobs()
    assert cached and all(name.startswith("fp32/") for name in cached), cached
    OpenVinoEngine(xml, "fp32", cache_dir=tmp_path)
    assert blobs() == cached  # the second load found its blob
    actual = OpenVinoEngine(xml, "bf16", cache_dir=tmp_path).run(ids)["last_hidden_state"].copy()
    assert any(name.startswith("bf16/") for name in blobs()), blobs()
    monkeypatch.setenv("SDRT_CACHE_DIR", "")
    expected = OpenVinoEngine(xml, "bf16").run(ids)["last_hidden_state"]
    assert np.isfinite(actual).all()
    np.testing.assert_array_equal(actual, expected)


# suite time: tests/runtime/bench covers --compare-diffusers in the default run
@pytest.mark.slow
def test_bench_openvino_beside_diffusers_bfloat16(tiny, ov_bundles, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    path = tmp_path / "bench.json"
    args = ["bench", str(ov_bundles("sd1", "bf16")), "--steps", "2", "--runs", "1", "--warmup", "0"]
    args += ["--provider", "openvino", "--compare-diffusers", str(tiny.model("sd1"))]
    assert main([*args, "--diffusers-dtype", "bfloat16", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(cpu, bfloat16," in out and "openvino, openvino bf16" in out, out
    result = json.loads(path.read_text())
    assert result["sdrt"]["provider"] == "openvino" and result["diffusers"]["dtype"] == "bfloat16"
    assert result["diffusers"]["stages"]["pipeline"]["median_s"] > 0
