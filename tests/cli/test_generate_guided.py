"""``sdrt generate``'s guided loops: --safety-preset, --editing-prompt, --panorama (the task each flag picks,
and one run of each against diffusers' pipeline on the tiny SD 1.x folder)."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.parity import assert_parity

torch = pytest.importorskip("torch")


def _generate(bundle, out, *flags: str) -> int:
    from sdrt.cli.sdrt import main

    common = ["--steps", "2", "--seed", "7", "--size", "64x64", "--provider", "cpu", "--no-progress"]
    return main(["generate", str(bundle), "a photo of a red cat", *common, *flags, "-o", str(out)])


def test_flags_pick_the_guided_tasks():
    import sdrt.runtime as rt
    from sdrt.cli.task_choice import ImageInputs, pipeline_class
    from sdrt.runtime.errors import InputError

    assert pipeline_class("sd1", ImageInputs(panorama=True)) is rt.StableDiffusionPanoramaPipeline
    assert pipeline_class("sd2", ImageInputs(editing_prompts=("a",))) is rt.SemanticStableDiffusionPipeline
    assert pipeline_class("sd1", ImageInputs(safety_preset="max")) is rt.StableDiffusionPipelineSafe
    assert pipeline_class("sd1", ImageInputs()) is rt.StableDiffusionPipeline
    with pytest.raises(InputError, match="--edit-guidance-scale need --editing-prompt"):
        pipeline_class("sd1", ImageInputs(edit_guidance_scale=3.0))
    with pytest.raises(InputError, match="--panorama"):
        pipeline_class("sd1", ImageInputs(panorama=True, safety_preset="max"))


@pytest.mark.parametrize(
    ("flags", "reference", "arguments"),
    [
        (["--safety-preset", "max"], "StableDiffusionPipelineSafe", "max"),
        (
            ["--editing-prompt", "blue square", "--editing-prompt", "dog", "--edit-guidance-scale", "4"]
            + ["--steps", "12"],  # past SEGA's 10 warm-up steps
            "SemanticStableDiffusionPipeline",
            {"editing_prompt": ["blue square", "dog"], "edit_guidance_scale": 4.0, "num_inference_steps": 12},
        ),
    ],
)
def test_generate_guided_matches_diffusers(tiny, tmp_path, capsys, flags, reference, arguments):
    import diffusers
    from diffusers.pipelines.deprecated.stable_diffusion_safe import SafetyConfig

    bundle = tiny.bundle("sd1")
    capsys.readouterr()
    assert _generate(bundle, tmp_path / "out.png", *flags) == 0
    ref = tiny.reference("sd1", reference)
    ref.scheduler = diffusers.PNDMScheduler.from_config(ref.scheduler.config)  # the bundle's
    kwargs = {"num_inference_steps": 2, **(SafetyConfig.MAX if arguments == "max" else arguments)}
    expected = ref(
        "a photo of a red cat",
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(7),
        **kwargs,
    ).images
    assert_parity([Image.open(tmp_path / "out.png")], expected)


def test_generate_panorama_outside_the_range_is_one_line(tiny, tmp_path, capsys):
    bundle = tiny.bundle("sd1")  # built for 32..128 pixels: diffusers' 2048x512 panorama is outside
    capsys.readouterr()
    code = _generate(bundle, tmp_path / "out.png", "--panorama", "--size", "2048x512")
    err = capsys.readouterr().err
    assert code != 0 and "panorama 2048x512" in err and "--max-size" in err
