"""StableDiffusionXLControlNetPipeline against diffusers' (same weights, same injected noise or seed): tiny SDXL
ControlNets from the tiny SDXL UNet, two schedulers, a guidance window, guess mode, two ControlNets; the
export of an SDXL ControlNet matches diffusers' ControlNetModel with its added conditions; scale 0 is the
plain SDXL pipeline's image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity, injected_noise, psnr
from tests.runtime.pipelines.test_controlnet import control_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 4


@pytest.fixture(scope="module")
def setup(sdxl_controlnet):
    return sdxl_controlnet


def sdrt_pipe(setup, count: int = 2, scheduler: str | None = None):
    from sdrt import schedulers
    from sdrt.runtime import StableDiffusionXLControlNetPipeline

    pipe = StableDiffusionXLControlNetPipeline.from_pretrained(setup[1], provider="cpu")
    if count == 1:
        pipe = StableDiffusionXLControlNetPipeline(
            **{**pipe.components, "controlnet": pipe.controlnet.nets[0]}
        )
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference(setup, count: int = 2, scheduler: str | None = None):
    model, _, nets = setup
    controlnets = [diffusers.ControlNetModel.from_pretrained(n) for n in nets[:count]]
    pipe = diffusers.StableDiffusionXLControlNetPipeline.from_pretrained(
        model, controlnet=controlnets[0] if count == 1 else controlnets
    )
    if scheduler:
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_sdxl_controlnet_engine_matches_diffusers(setup):
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.components import open_component

    _, bundle, nets = setup
    net = open_component(open_bundle(bundle), "controlnet_edges", "cpu")
    assert {"text_embeds", "time_ids"} <= set(net.record.inputs)
    ref = diffusers.ControlNetModel.from_pretrained(nets[1]).eval()
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((2, 4, 8, 12)).astype(np.float32)
    hidden = rng.standard_normal((2, 77, net.record.inputs["encoder_hidden_states"].shape[2])).astype(
        np.float32
    )
    cond = rng.uniform(0, 1, (2, 3, 64, 96)).astype(np.float32)
    added = {
        "text_embeds": rng.standard_normal((2, net.record.inputs["text_embeds"].shape[1])).astype(np.float32),
        "time_ids": np.array([[64, 96, 0, 0, 64, 96]] * 2, np.float32),
    }
    down, mid = net(sample, 321, hidden, cond, 0.7, added_cond_kwargs=added)
    with torch.no_grad():
        expected_down, expected_mid = ref(
            torch.from_numpy(sample),
            321,
            encoder_hidden_states=torch.from_numpy(hidden),
            controlnet_cond=torch.from_numpy(cond),
            conditioning_scale=0.7,
            added_cond_kwargs={k: torch.from_numpy(v) for k, v in added.items()},
            return_dict=False,
        )
    assert len(down) == len(expected_down) == len(ref.controlnet_down_blocks)  # SDXL's: 9
    for actual, expected in [*zip(down, expected_down), (mid, expected_mid)]:
        expected = expected.numpy()
        assert np.abs(actual - expected).max() <= 1e-4 * max(np.abs(expected).max(), 1e-6)


@pytest.mark.parametrize(
    ("scheduler", "kwargs"),
    [
        (None, {}),  # the bundle's Euler
        ("DPMSolverMultistepScheduler", {"controlnet_conditioning_scale": 0.6}),
        (None, {"control_guidance_start": 0.25, "control_guidance_end": 0.75}),
        (None, {"guess_mode": True, "guidance_scale": 6.0, "num_images_per_prompt": 2}),
        (None, {"height": 64, "width": 48, "original_size": (96, 96), "denoising_end": 0.6}),  # resized
    ],
)
def test_one_controlnet_matches_diffusers(setup, scheduler, kwargs):
    args = dict(image=control_image(), num_inference_steps=STEPS, output_type="np", **kwargs)
    with injected_noise(7) as rng:
        expected = reference(setup, 1, scheduler)(PROMPT, **args).images
    actual = sdrt_pipe(setup, 1, scheduler)(PROMPT, generator=rng, **args).images
    assert_parity(actual, expected)


def test_two_controlnets_with_scales_and_windows(setup):
    args = dict(
        image=[control_image(), control_image(flip=True)],
        controlnet_conditioning_scale=[0.7, 1.3],
        control_guidance_start=[0.0, 0.5],
        control_guidance_end=[0.5, 1.0],
        num_inference_steps=STEPS,
        num_images_per_prompt=2,
        output_type="np",
    )
    with injected_noise(9) as rng:
        expected = reference(setup, 2, "EulerAncestralDiscreteScheduler")(PROMPT, **args).images
    actual = sdrt_pipe(setup, 2, "EulerAncestralDiscreteScheduler")(PROMPT, generator=rng, **args).images
    assert_parity(actual, expected)


def test_the_control_image_conditions_and_scale_zero_is_the_plain_sdxl_pipeline(setup):
    pipe = sdrt_pipe(setup, 1)
    args = dict(num_inference_steps=STEPS, output_type="np")
    with injected_noise(5) as rng:
        first = pipe(PROMPT, image=control_image(), generator=rng, **args).images
    with injected_noise(5) as rng:
        second = pipe(PROMPT, image=control_image(flip=True), generator=rng, **args).images
    assert psnr(first, second) < 35.0  # parity is >= 60 dB: the control image moves the picture
    with injected_noise(5) as rng:
        unconditioned = pipe(
            PROMPT, image=control_image(), controlnet_conditioning_scale=0.0, generator=rng, **args
        ).images
    plain = diffusers.StableDiffusionXLPipeline.from_pretrained(setup[0])
    plain.set_progress_bar_config(disable=True)
    with injected_noise(5):
        expected = plain(PROMPT, height=64, width=64, **args).images
    assert_parity(unconditioned, expected)
    assert psnr(first, expected) < 35.0


def test_auto_pipeline_picks_the_sdxl_controlnet_pipeline(setup):
    from sdrt.runtime import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(setup[1], provider="cpu")
    assert type(pipe).__name__ == "StableDiffusionXLControlNetPipeline" and len(pipe.controlnet) == 2


def test_sdrt_generate_with_two_control_images_matches_diffusers(setup, tmp_path):
    from sdrt.cli.sdrt import main

    model, bundle, nets = setup
    pictures = [tmp_path / "edges.png", tmp_path / "flipped.png"]
    control_image().save(pictures[0])
    control_image(flip=True).save(pictures[1])
    argv = [
        "generate",
        str(bundle),
        PROMPT,
        "--steps",
        "4",
        "--seed",
        "99",
        "--provider",
        "cpu",
        "--no-progress",
    ]
    flags = [
        "--control-image",
        str(pictures[0]),
        "--control-image",
        str(pictures[1]),
        "--control-scale",
        "0.5",
    ]
    assert main([*argv, "-o", str(tmp_path / "cn.png"), *flags, "--control-scale", "1.5"]) == 0
    expected = reference(setup, 2)(
        PROMPT,
        image=[control_image(), control_image(flip=True)],
        controlnet_conditioning_scale=[0.5, 1.5],
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(tmp_path / "cn.png").convert("RGB")], expected)
