"""IP-Adapter (build-engine --ip-adapter FILE --image-encoder DIR) against diffusers' pipeline with the same adapter
loaded by ``load_ip_adapter`` (fp32, ORT CPU): ``ip_adapter_image`` and ``ip_adapter_image_embeds``, two schedulers,
``set_ip_adapter_scale`` (a number and a dict by blocks); the image conditions, scale 0 is the plain model's image;
the new engines pass the export gates; an adapter for another model is refused at build, nothing built; SDXL."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.ip_adapter_files import SUBFOLDER, WEIGHT_NAME, make_ip_adapter
from tests.parity import PARITY_DB, assert_parity, injected_noise, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 4
COMPONENTS = ["text_encoder", "unet", "vae_decoder", "image_projection", "image_encoder"]
SIZES = ["--min-size", "32", "--max-size", "64", "--max-batch", "2"]


def picture(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    a, b = rng.uniform(3, 9, size=2)
    pixels = np.stack([np.sin(a * x) ** 2, np.cos(b * y) ** 2, 1 - x * y], axis=-1)
    return Image.fromarray((pixels * 255).astype(np.uint8))


def build(model, out, adapter, *extra: str) -> int | None:
    from sdrt.cli.build_engine import main as build_engine

    encoder = adapter.parent / "image_encoder"
    args = [str(model), "-o", str(out), "--backend", "ort", "--precision", "fp32", "-q", *SIZES]
    return build_engine([*args, "--ip-adapter", str(adapter), "--image-encoder", str(encoder), *extra])


@pytest.fixture(scope="module")
def setup(model_folders, tmp_path_factory):
    """The sd1 model, its adapter and a bundle built with the validation gates on."""
    root = tmp_path_factory.mktemp("ip_adapter")
    model = model_folders("sd1")
    adapter = make_ip_adapter(model, root / "adapter")
    bundle = root / "bundle"
    assert build(model, bundle, adapter, "--components", *COMPONENTS) in (0, None)
    return model, adapter, bundle


def reference(setup, scheduler: str | None = None, kind=None):
    model, adapter, _ = setup
    pipe = (kind or diffusers.StableDiffusionPipeline).from_pretrained(model, safety_checker=None)
    pipe.load_ip_adapter(str(adapter.parent.parent), subfolder=SUBFOLDER, weight_name=WEIGHT_NAME)
    if scheduler:
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdrt_pipe(bundle, scheduler: str | None = None, kind: str = "StableDiffusionPipeline"):
    import sdrt.runtime
    from sdrt import schedulers

    pipe = getattr(sdrt.runtime, kind).from_pretrained(bundle, provider="cpu")
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize(
    ("scheduler", "scale"),
    [(None, 1.0), ("DPMSolverMultistepScheduler", 0.6)],  # the bundle's PNDM, then another scheduler
)
def test_ip_adapter_image_matches_diffusers(setup, scheduler, scale):
    ref, pipe = reference(setup, scheduler), sdrt_pipe(setup[2], scheduler)
    ref.set_ip_adapter_scale(scale)
    pipe.set_ip_adapter_scale(scale)
    args = dict(ip_adapter_image=picture(1), num_inference_steps=STEPS, output_type="np")
    with injected_noise(5) as rng:
        expected = ref(PROMPT, **args).images
    actual = pipe(PROMPT, generator=rng, **args).images
    assert_parity(actual, expected)


def test_image_embeds_and_a_scale_by_blocks_match_diffusers(setup):
    """``ip_adapter_image_embeds`` as diffusers' ``prepare_ip_adapter_image_embeds`` makes them (compared too), two
    images per prompt, and a dict scale that leaves the down and mid blocks at 0."""
    ref, pipe = reference(setup), sdrt_pipe(setup[2])
    scale = {"up": {"block_1": [0.0, 1.5]}}
    ref.set_ip_adapter_scale(scale)
    pipe.set_ip_adapter_scale(scale)
    embeds = ref.prepare_ip_adapter_image_embeds(picture(2), None, "cpu", 1, True)
    mine = pipe.prepare_ip_adapter_image_embeds(picture(2), None, None, 1, True)
    assert np.abs(mine[0] - embeds[0].detach().numpy()).max() < 1e-5
    args = dict(ip_adapter_image_embeds=embeds, num_images_per_prompt=2, num_inference_steps=STEPS)
    with injected_noise(6) as rng:
        expected = ref(PROMPT, output_type="np", **args).images
    actual = pipe(PROMPT, generator=rng, output_type="np", **args).images
    assert_parity(actual, expected)


def test_the_image_conditions_and_scale_zero_is_the_plain_image(setup):
    model = setup[0]
    pipe = sdrt_pipe(setup[2])
    args = dict(num_inference_steps=STEPS, output_type="np")
    first = pipe(PROMPT, ip_adapter_image=picture(1), generator=3, **args).images
    other = pipe(PROMPT, ip_adapter_image=picture(7), generator=3, **args).images
    # the tiny random CLIP tells images apart weakly (~47 dB), far outside the implementation's error (~130 dB)
    assert psnr(first, other) < PARITY_DB, "another ip_adapter_image left the image as it was"
    pipe.set_ip_adapter_scale(0.0)
    zero = pipe(PROMPT, ip_adapter_image=picture(1), generator=3, **args).images
    plain = diffusers.StableDiffusionPipeline.from_pretrained(model, safety_checker=None)
    plain.set_progress_bar_config(disable=True)
    expected = plain(PROMPT, generator=torch.Generator().manual_seed(3), **args).images
    assert_parity(zero, expected)
    assert_parity(pipe(PROMPT, generator=3, **args).images, expected)  # no image: the plain model too
    assert psnr(first, zero) < 30


def test_the_new_engines_pass_the_export_gates(setup, capsys):
    from sdrt.cli.sdrt import main

    assert main(["inspect", str(setup[2])]) in (0, None)
    listed = capsys.readouterr().out
    assert (
        f"ip-adapter   {setup[1]} (4 layers" in listed
        and "image_projection" in listed
        and "image_encoder" in listed
    )
    manifest = json.loads((setup[2] / "manifest.json").read_text())
    for name in ("unet", "image_projection", "image_encoder"):
        validation = manifest["components"][name]["validation"]
        assert validation is not None and validation["value"] <= validation["threshold"], (name, validation)
    inputs = manifest["components"]["unet"]["inputs"]
    assert inputs["ip_hidden_states"]["shape"] == ["batch", 4, 32]
    assert inputs["ip_adapter_scale"]["shape"] == [len(manifest["unet"]["ip_adapter_layers"])]
    assert manifest["source"]["ip_adapter"] == str(setup[1])


def test_an_adapter_for_another_model_is_refused_before_anything_is_built(setup, tmp_path, capsys):
    from sdrt.cli.build_engine import main as build_engine

    wrong = make_ip_adapter(setup[0], tmp_path / "wide", cross=64)
    out = tmp_path / "bundle"
    assert build(setup[0], out, wrong) == 2
    message = capsys.readouterr().err
    assert str(wrong) in message and "cross-attention width of 64" in message and "32" in message
    assert not out.exists() and not list(tmp_path.glob(".bundle*"))
    args = [str(setup[0]), "-o", str(out), "-q", "--ip-adapter", str(setup[1])]
    assert build_engine(args) == 2  # no --image-encoder
    assert "--image-encoder" in capsys.readouterr().err and not out.exists()
    from safetensors.torch import save_file

    plus = wrong.with_name(
        "plus.safetensors"
    )  # an IP-Adapter Plus projection (a resampler): not exported yet
    save_file(
        {"image_proj.latents": torch.zeros(1, 4, 8), "ip_adapter.1.to_k_ip.weight": torch.zeros(16, 32)}, plus
    )
    assert build(setup[0], out, plus) == 2
    assert "not yet Plus" in capsys.readouterr().err and not out.exists()


def test_calls_a_bundle_cannot_serve_are_refused(setup, tiny):
    from sdrt.runtime import StableDiffusionImg2ImgPipeline
    from sdrt.runtime.errors import InputError

    plain = tiny.pipeline("sd1", "StableDiffusionPipeline")
    with pytest.raises(
        InputError, match="has no IP-Adapter; rebuild it with build-engine MODEL --ip-adapter"
    ):
        plain(PROMPT, ip_adapter_image=picture(1), num_inference_steps=2)
    with pytest.raises(InputError, match="has no IP-Adapter"):
        plain.set_ip_adapter_scale(0.5)
    pipe = sdrt_pipe(setup[2])
    with pytest.raises(InputError, match="must have same length as the number of IP Adapters"):
        pipe(PROMPT, ip_adapter_image=[picture(1), picture(2)], num_inference_steps=2)
    with pytest.raises(InputError, match="Expected 2 scales for up.block_1"):
        pipe.set_ip_adapter_scale({"up": {"block_1": [0.1, 0.2, 0.3]}})
    img2img = StableDiffusionImg2ImgPipeline(**plain.components)
    with pytest.raises(InputError, match="runs no IP-Adapter"):
        img2img(PROMPT, image=picture(3, (32, 32)), ip_adapter_image=picture(1), num_inference_steps=2)


def test_sdrt_generate_takes_an_ip_adapter_image(setup, tmp_path):
    from sdrt.cli.sdrt import main

    image = tmp_path / "prompt.png"
    picture(1).save(image)
    out = tmp_path / "out.png"
    args = ["generate", str(setup[2]), PROMPT, "-o", str(out), "--steps", "3", "--seed", "4", "--no-progress"]
    assert main(
        [*args, "--ip-adapter-image", str(image), "--ip-adapter-scale", "0.7", "--provider", "cpu"]
    ) in (
        0,
        None,
    )
    ref = reference(setup)
    ref.set_ip_adapter_scale(0.7)
    expected = ref(
        PROMPT,
        ip_adapter_image=Image.open(image).convert("RGB"),
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(4),
    ).images
    assert psnr([Image.open(out).convert("RGB")], expected) >= 40


@pytest.mark.slow
def test_sdxl_ip_adapter_matches_diffusers(model_folders, tmp_path):
    model = model_folders("sdxl")
    adapter = make_ip_adapter(model, tmp_path / "adapter")
    bundle = tmp_path / "bundle"
    components = [
        "text_encoder",
        "text_encoder_2",
        "unet",
        "vae_decoder",
        "image_projection",
        "image_encoder",
    ]
    assert build(model, bundle, adapter, "--no-validate", "--components", *components) in (0, None)
    ref = reference(
        (model, adapter, bundle), "EulerAncestralDiscreteScheduler", diffusers.StableDiffusionXLPipeline
    )
    pipe = sdrt_pipe(bundle, "EulerAncestralDiscreteScheduler", "StableDiffusionXLPipeline")
    for scale in (1.0, {"down": 0.5, "up": {"block_1": [1.0, 0.0]}}):
        ref.set_ip_adapter_scale(scale)
        pipe.set_ip_adapter_scale(scale)
        args = dict(ip_adapter_image=picture(4), num_inference_steps=STEPS, output_type="np")
        with injected_noise(9) as rng:
            expected = ref(PROMPT, **args).images
        actual = pipe(PROMPT, generator=rng, **args).images
        assert_parity(actual, expected)
