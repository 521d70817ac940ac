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


def test_generate_diffedit_matches_diffusers(tiny, tmp_path, capsys):
    """--image with --source-prompt: diffusers' three DiffEdit steps (mask, inversion, the edit with the source
    prompt as negative prompt), each from --seed; the mask saved beside the output."""
    import diffusers
    import numpy as np

    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    rgb = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], axis=-1)
    picture = Image.fromarray((rgb * 255).astype(np.uint8))
    picture.save(tmp_path / "in.png")
    source, target, seed = "a", "b", 7  # prompts whose mask on the tiny model is not empty
    flags = ["--image", str(tmp_path / "in.png"), "--source-prompt", source, "--strength", "0.75"]
    flags += ["--scheduler", "DDIMScheduler", "--steps", "4", "--seed", str(seed), "--provider", "cpu"]
    capsys.readouterr()
    code = main_generate(tiny.bundle("sd1"), target, tmp_path / "out.png", *flags)
    assert code == 0, capsys.readouterr().err

    sd = tiny.reference("sd1", "StableDiffusionPipeline")
    parts = {k: v for k, v in sd.components.items() if k != "image_encoder"}
    ref = diffusers.StableDiffusionDiffEditPipeline(
        **(parts | {"scheduler": diffusers.DDIMScheduler.from_config(sd.scheduler.config)}),
        inverse_scheduler=diffusers.DDIMInverseScheduler.from_config(sd.scheduler.config),
        requires_safety_checker=False,
    )
    ref.set_progress_bar_config(disable=True)
    shared = dict(num_inference_steps=4, generator=torch.Generator().manual_seed(seed))
    mask = ref.generate_mask(image=picture, source_prompt=source, target_prompt=target, **shared)
    shared["generator"] = torch.Generator().manual_seed(seed)
    inverted = ref.invert(prompt=source, image=picture, inpaint_strength=0.75, **shared).latents
    shared["generator"] = torch.Generator().manual_seed(seed)
    expected = ref(
        prompt=target,
        mask_image=mask,
        image_latents=inverted,
        negative_prompt=source,
        inpaint_strength=0.75,
        **shared,
    ).images
    assert_parity([Image.open(tmp_path / "out.png")], expected)
    written = np.asarray(Image.open(tmp_path / "out-mask.png"))
    assert written.shape == (64, 64) and 0 < written.mean() < 255, (
        "the mask picture, neither all kept nor all edited"
    )
    np.testing.assert_array_equal(written[::8, ::8] > 127, mask[0] > 0.5)


def test_generate_diffedit_flags(tiny, tmp_path, capsys):
    import sdrt.runtime as rt
    from sdrt.cli.task_choice import ImageInputs, pipeline_class
    from sdrt.runtime.errors import InputError

    picture = tmp_path / "in.png"
    assert (
        pipeline_class("sd1", ImageInputs(image=picture, source_prompt="a"))
        is rt.StableDiffusionDiffEditPipeline
    )
    with pytest.raises(InputError, match="--source-prompt need --image"):
        pipeline_class("sd1", ImageInputs(source_prompt="a"))
    Image.new("RGB", (64, 64)).save(picture)
    capsys.readouterr()
    code = main_generate(
        tiny.bundle("sd1"),
        "b",
        tmp_path / "o.png",
        "--image",
        str(picture),
        "--source-prompt",
        "a",
        "--num-images",
        "2",
        "--provider",
        "cpu",
    )
    err = capsys.readouterr().err
    assert code != 0 and "--num-images" in err and "DiffEdit" in err and not (tmp_path / "o-0.png").exists()


def main_generate(bundle, prompt, out, *flags: str) -> int:
    from sdrt.cli.sdrt import main

    return main(["generate", str(bundle), prompt, "--no-progress", *flags, "-o", str(out)])
