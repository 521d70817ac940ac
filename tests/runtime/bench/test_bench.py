"""``sdrt bench`` on a tiny bundle: the JSON's fields and the consistency of its stage times (not the speed),
the comparison with diffusers, and the refusal of a comparison model the bundle was not built from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("torch")

MACHINE_KEYS = {"cpu", "cores", "platform", "python"}
STAGES = {
    "pipeline",
    "text_encoder",
    "unet_per_step",
    "unet_total",
    "denoise_loop",
    "loop_overhead_per_step",
    "vae_decode",
}


def _bench(args: list[str], capsys) -> tuple[int, str, str]:
    from sdrt.cli.sdrt import main

    capsys.readouterr()  # what building the bundle printed
    code = main(["bench", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bench_json_fields_and_consistent_stage_times(tiny, tmp_path, capsys):
    bundle = tiny.bundle("sd1")
    path = tmp_path / "bench.json"
    args = [
        str(bundle),
        "--steps",
        "3",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--size",
        "48x32",
        "--prompt",
        "a red square",
    ]
    code, out, err = _bench([*args, "--scheduler", "euler", "--provider", "cpu", "--json", str(path)], capsys)
    assert code == 0, err
    assert "UNet per step" in out and "UNet x 3 calls" in out and "whole pipeline" in out
    result = json.loads(path.read_text())

    assert result["settings"] == {
        "bundle": str(bundle),
        "model_type": "sd1",
        "steps": 3,
        "runs": 2,
        "warmup": 0,
        "height": 32,
        "width": 48,
        "batch": 1,
        "scheduler": "EulerDiscreteScheduler",
        "provider": "cpu",
        "prompt": "a red square",
        "guidance_scale": 7.5,
        "seed": 0,
        "compare_diffusers": None,
    }
    assert MACHINE_KEYS <= set(result["machine"]) and result["machine"]["cores"] >= 1
    assert {"sdrt", "numpy", "onnxruntime"} <= set(result["versions"])
    assert "torch" not in result["versions"] and "diffusers" not in result
    sdrt = result["sdrt"]
    assert sdrt["provider"] == "cpu" and sdrt["scheduler"] == "EulerDiscreteScheduler"
    assert sdrt["precision"] == "fp32"
    assert sdrt["unet_calls_per_run"] == 3 and sdrt["text_encoder_calls_per_run"] == 2
    assert set(sdrt["stages"]) == STAGES
    for stage in sdrt["stages"].values():
        assert 0 < stage["min_s"] <= stage["median_s"] <= stage["max_s"]
    assert sdrt["stages"]["unet_per_step"]["n"] == 6 and sdrt["stages"]["pipeline"]["n"] == 2
    assert sdrt["images_per_s"] == pytest.approx(1 / sdrt["stages"]["pipeline"]["median_s"])
    cold = sdrt["cold"]
    assert cold["cold_s"] == pytest.approx(cold["load_s"] + cold["first_image_s"])
    assert cold["load_s"] > 0 and cold["first_image_s"] > 0
    assert sdrt["memory"]["peak_rss_mib"] > 0
    assert len(sdrt["runs"]) == 2
    for run in sdrt["runs"]:
        assert len(run["unet_calls_s"]) == 3 and min(run["unet_calls_s"]) > 0
        assert run["unet_s"] == pytest.approx(sum(run["unet_calls_s"]))
        assert run["unet_s"] < run["denoise_loop_s"] < run["pipeline_s"]
        assert run["text_encoder_s"] + run["denoise_loop_s"] + run["vae_decode_s"] <= run["pipeline_s"]
        assert run["loop_overhead_per_step_s"] == pytest.approx((run["denoise_loop_s"] - run["unet_s"]) / 3)


def test_bench_compare_diffusers(tiny, tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = [str(tiny.bundle("sd1")), "--steps", "2", "--runs", "1", "--warmup", "0", "--provider", "cpu"]
    code, out, err = _bench(
        [*args, "--compare-diffusers", str(tiny.model("sd1")), "--json", str(path)], capsys
    )
    assert code == 0, err
    assert "speed-up" in out and "diffusers" in out
    result = json.loads(path.read_text())
    ref = result["diffusers"]
    # diffusers ran in a process of its own, not in this one, which ran sdrt's engines; the table says so
    assert ref["process"] == "separate" and ref["pid"] != os.getpid()
    assert f"in a process of its own (pid {ref['pid']}" in out
    assert ref["memory"]["peak_rss_mib"] > 0
    assert (
        ref["pipeline"] == "StableDiffusionPipeline" and ref["device"] == "cpu" and ref["dtype"] == "float32"
    )
    assert ref["scheduler"] == result["sdrt"]["scheduler"] == "PNDMScheduler"
    assert ref["unet_calls_per_run"] == result["sdrt"]["unet_calls_per_run"]
    assert set(ref["stages"]) == STAGES
    for stage in ref["stages"].values():
        assert stage["median_s"] > 0
    assert {"torch", "diffusers"} <= set(result["versions"])
    ratios = result["ratios"]
    assert set(ratios) == STAGES - {"denoise_loop"} | {"cold", "images_per_s"}
    expected = ref["stages"]["pipeline"]["median_s"] / result["sdrt"]["stages"]["pipeline"]["median_s"]
    assert ratios["pipeline"] == pytest.approx(expected)


def test_a_child_that_dies_is_an_sdrt_error():
    """A comparison process that ends without answering is an EngineError in the bench's process."""
    from sdrt.runtime.bench.process import ProcessRunner
    from sdrt.runtime.errors import EngineError

    with pytest.raises(EngineError, match=r"the diffusers bench process ended \(exit status 1\)"):
        ProcessRunner("sdrt.runtime.no_such_module", "diffusers", {})


def test_bench_refuses_another_model_type(tiny, capsys):
    bundle, other = tiny.bundle("sd1"), tiny.model("sdxl")
    code, _, err = _bench([str(bundle), "--steps", "1", "--compare-diffusers", str(other)], capsys)
    assert code == 2
    assert "'sdxl' model" in err and "'sd1' model" in err
    assert str(other) in err and str(bundle) in err


def test_bench_refuses_other_weights_and_accepts_a_copy(tiny, tmp_path, capsys):
    from sdrt.export.diffusers_reference import check_comparison_model
    from sdrt.runtime.bundle.bundle import open_bundle
    from tests.models import make_sd1

    bundle = tiny.bundle("sd1")
    other = make_sd1(tmp_path / "reseeded", seed=7)
    code, _, err = _bench([str(bundle), "--steps", "1", "--compare-diffusers", str(other)], capsys)
    assert code == 2
    assert "other weights" in err and str(other) in err and str(bundle) in err
    copy = shutil.copytree(tiny.model("sd1"), tmp_path / "copy")
    check_comparison_model(open_bundle(bundle), copy)  # same files elsewhere: accepted


def test_bench_without_torch(tiny, tmp_path):
    """Without --compare-diffusers the bench runs with torch, diffusers and transformers unimportable."""
    from tests.runtime.test_torch_free import BLOCKER

    path = tmp_path / "bench.json"
    args = [str(tiny.bundle("sd1")), "--steps", "1", "--runs", "1", "--warmup", "0", "--provider", "cpu"]
    code = (
        BLOCKER
        + f"from sdrt.cli.sdrt import main\nsys.exit(main({['bench', *args, '--json', str(path)]!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(path.read_text())["sdrt"]["stages"]["pipeline"]["median_s"] > 0


def test_default_prompt_is_made_of_the_bundles_words(tiny):
    """The tiny model's vocabulary has no 'astronaut': the bench prompts with words transformers'
    tokenizer of the same folder reads as whole words."""
    from transformers import CLIPTokenizer

    from sdrt.runtime.bench.run import DEFAULT_PROMPT, bench_prompt
    from sdrt.runtime.bundle.bundle import open_bundle

    bundle = open_bundle(tiny.bundle("sd1"))
    reference = CLIPTokenizer.from_pretrained(bundle.path / "tokenizer")
    assert len(reference.tokenize(DEFAULT_PROMPT)) > len(DEFAULT_PROMPT.split())  # split into pieces
    prompt = bench_prompt(bundle)
    assert prompt != DEFAULT_PROMPT and len(prompt.split()) >= 2
    assert len(reference.tokenize(prompt)) == len(prompt.split())
