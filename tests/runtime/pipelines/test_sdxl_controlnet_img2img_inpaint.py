"""StableDiffusionXLControlNetImg2ImgPipeline and StableDiffusionXLControlNetInpaintPipeline against diffusers'
pipelines of the same names (the tiny SDXL with the two tiny SDXL ControlNets of the session's bundle, the same
injected noise or seed), two schedulers each; the control image conditions and scale 0 is the plain SDXL
img2img image; ``sdrt generate --image / --mask --control-image`` reaches them."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.parity import assert_parity, injected_noise, psnr
from tests.runtime.pipelines.test_controlnet import control_image, init_image, mask_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 4
NAMES = {
    "img2img": "StableDiffusionXLControlNetImg2ImgPipeline",
    "inpaint": "StableDiffusionXLControlNetInpaintPipeline",
}


def pipes(setup, task: str, count: int, scheduler: str | None = None):
    """(sdrt's pipeline, diffusers') of ``task`` over the first ``count`` ControlNets."""
    import sdrt.runtime
    from sdrt import schedulers

    model, bundle, nets = setup
    cls = getattr(sdrt.runtime, NAMES[task])
    pipe = cls.from_pretrained(bundle, provider="cpu")
    if count == 1:
        pipe = cls(**{**pipe.components, "controlnet": pipe.controlnet.nets[0]})
    controlnets = [diffusers.ControlNetModel.from_pretrained(n) for n in nets[:count]]
    ref = getattr(diffusers, NAMES[task]).from_pretrained(
        model, controlnet=controlnets[0] if count == 1 else controlnets
    )
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
        ref.scheduler = getattr(diffusers, scheduler).from_config(ref.scheduler.config)
    for p in (pipe, ref):
        p.set_progress_bar_config(disable=True)
    return pipe, ref


def compare(setup, task: str, count: int, scheduler: str | None, seed: int, **kwargs) -> None:
    pipe, ref = pipes(setup, task, count, scheduler)
    controls = [control_image(), control_image(flip=True)][:count]
    args = dict(
        image=init_image(),
        control_image=controls[0] if count == 1 else controls,
        num_inference_steps=STEPS,
        output_type="np",
        **kwargs,
    )
    if task == "inpaint":
        args["mask_image"] = mask_image()
    with injected_noise(seed) as rng:
        expected = ref(PROMPT, **args).images
    assert_parity(pipe(PROMPT, generator=rng, **args).images, expected)


@pytest.mark.parametrize(
    ("count", "scheduler", "kwargs"),
    [
        (1, None, {"strength": 0.7}),  # the bundle's Euler
        (1, "DPMSolverMultistepScheduler", {"controlnet_conditioning_scale": 0.6, "original_size": (96, 96)}),
        (
            2,
            "EulerAncestralDiscreteScheduler",
            {"control_guidance_end": [0.5, 1.0], "num_images_per_prompt": 2},
        ),
        (1, None, {"guess_mode": True, "guidance_scale": 6.0}),
    ],
)
def test_img2img_matches_diffusers(sdxl_controlnet, count, scheduler, kwargs):
    compare(sdxl_controlnet, "img2img", count, scheduler, 11, **kwargs)


@pytest.mark.parametrize(
    ("count", "scheduler", "kwargs"),
    [
        (1, None, {}),
        (1, "DPMSolverMultistepScheduler", {"strength": 0.75, "control_guidance_start": 0.3}),
        (2, "EulerAncestralDiscreteScheduler", {"controlnet_conditioning_scale": [0.7, 1.3]}),
        # the guidance windows span the steps before the cut; the last step left keeps the image un-noised
        (1, None, {"denoising_end": 0.6, "control_guidance_end": 0.5}),
    ],
)
def test_inpaint_matches_diffusers(sdxl_controlnet, count, scheduler, kwargs):
    compare(sdxl_controlnet, "inpaint", count, scheduler, 12, **kwargs)


def test_the_control_image_conditions_and_scale_zero_is_the_plain_img2img_image(sdxl_controlnet):
    pipe, _ = pipes(sdxl_controlnet, "img2img", 1)
    args = dict(image=init_image(), strength=0.8, num_inference_steps=STEPS, output_type="np")
    with injected_noise(5) as rng:
        first = pipe(PROMPT, control_image=control_image(), generator=rng, **args).images
    with injected_noise(5) as rng:
        second = pipe(PROMPT, control_image=control_image(flip=True), generator=rng, **args).images
    assert psnr(first, second) < 35.0  # parity is >= 60 dB: the control image moves the picture
    with injected_noise(5) as rng:
        unconditioned = pipe(
            PROMPT, control_image=control_image(), controlnet_conditioning_scale=0.0, generator=rng, **args
        ).images
    plain = diffusers.StableDiffusionXLImg2ImgPipeline.from_pretrained(sdxl_controlnet[0])
    plain.set_progress_bar_config(disable=True)
    with injected_noise(5):
        expected = plain(PROMPT, guidance_scale=5.0, **args).images
    assert_parity(unconditioned, expected)
    assert psnr(first, expected) < 35.0


@pytest.mark.parametrize("task", ["img2img", "inpaint"])
def test_sdrt_generate_reaches_them(sdxl_controlnet, task, tmp_path):
    from sdrt.cli.sdrt import main

    pictures = {name: tmp_path / f"{name}.png" for name in ("init", "edges", "flipped", "mask")}
    init_image().save(pictures["init"])
    control_image().save(pictures["edges"])
    control_image(flip=True).save(pictures["flipped"])
    mask_image().save(pictures["mask"])
    argv = ["generate", str(sdxl_controlnet[1]), PROMPT, "--steps", "4", "--seed", "21", "--provider", "cpu"]
    argv += ["--no-progress", "-o", str(tmp_path / "out.png"), "--image", str(pictures["init"])]
    argv += ["--control-image", str(pictures["edges"]), "--control-image", str(pictures["flipped"])]
    args = dict(image=init_image(), control_image=[control_image(), control_image(flip=True)])
    args["controlnet_conditioning_scale"] = 1.0  # sdrt generate's scale without --control-scale
    if task == "inpaint":
        argv += ["--mask", str(pictures["mask"])]
        args["mask_image"] = mask_image()
    assert main(argv) == 0
    _, ref = pipes(sdxl_controlnet, task, 2)
    expected = ref(PROMPT, num_inference_steps=4, generator=torch.Generator().manual_seed(21), **args).images
    assert_parity([Image.open(tmp_path / "out.png").convert("RGB")], expected)


def test_a_missing_control_image_is_a_clear_error(sdxl_controlnet):
    from sdrt.runtime.errors import InputError

    pipe, _ = pipes(sdxl_controlnet, "inpaint", 1)
    with pytest.raises(InputError, match="the control image"):
        pipe(PROMPT, image=init_image(), mask_image=mask_image(), num_inference_steps=2)
