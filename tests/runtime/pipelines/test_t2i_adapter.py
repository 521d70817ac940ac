"""StableDiffusionAdapterPipeline against diffusers' (same weights, same injected noise or seed): tiny T2IAdapters
made for the tiny SD UNet (an RGB one and a grayscale one), two schedulers, a MultiAdapter; the adapter image
conditions, scale 0 is the plain pipeline's image; the adapter engine passes the export gate and matches
diffusers' T2IAdapter; an adapter for another model is refused at build, a wrong image at call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.parity import assert_parity, injected_noise, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 5


def make_adapter(
    folder: Path, *, seed: int, channels=(16, 32), in_channels: int = 3, kind="full_adapter"
) -> Path:
    """A tiny diffusers T2IAdapter saved with ``save_pretrained``: diffusers' random init, tripled, so that its
    features (std ~3) move the tiny UNet's picture clearly."""
    torch.manual_seed(seed)
    adapter = diffusers.T2IAdapter(
        in_channels=in_channels,
        channels=list(channels),
        num_res_blocks=1,
        downscale_factor=8,
        adapter_type=kind,
    ).eval()
    with torch.no_grad():
        for param in adapter.parameters():
            param.mul_(3.0)
    adapter.save_pretrained(folder)
    return Path(folder)


def sketch(size: int = 64, flip: bool = False, mode: str = "RGB") -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    lines = (np.abs(np.sin(9 * x) * np.cos(7 * y)) > 0.5).astype(np.float64)
    pixels = np.stack([lines, x, 1.0 - y], axis=-1)
    image = Image.fromarray((pixels * 255).astype(np.uint8)).convert(mode)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image


def build(
    model: Path, out: Path, adapters: list[str], validate: bool = False, extra: tuple[str, ...] = ()
) -> int | None:
    from sdrt.cli.build_engine import main as build_engine

    options = ["--backend", "ort", "--precision", "fp32", "-q", "--min-size", "32", "--max-size", "128"]
    options += ["--max-batch", "2", *([] if validate else ["--no-validate"]), *extra]
    for adapter in adapters:
        options += ["--adapter", adapter]
    return build_engine([str(model), "-o", str(out), *options])


@pytest.fixture(scope="module")
def setup(model_folders, tmp_path_factory):
    """The sd1 model, its adapter bundle (the export gates on) and the two adapter folders."""
    root = tmp_path_factory.mktemp("t2i_adapter")
    model = model_folders("sd1")
    adapters = [
        make_adapter(root / "adapter", seed=20),
        make_adapter(root / "sketch", seed=21, in_channels=1),
    ]
    bundle = root / "bundle"
    components = ("--components", "text_encoder", "unet", "vae_decoder", "adapter")
    specs = [str(adapters[0]), f"{adapters[1]}:sketch"]
    assert build(model, bundle, specs, validate=True, extra=components) in (0, None)
    return model, bundle, adapters


def sdrt_pipe(setup, count: int = 1, scheduler: str | None = None):
    from sdrt import schedulers
    from sdrt.runtime import StableDiffusionAdapterPipeline

    pipe = StableDiffusionAdapterPipeline.from_pretrained(setup[1], provider="cpu")
    if count == 1:
        pipe = StableDiffusionAdapterPipeline(**{**pipe.components, "adapter": pipe.adapter.adapters[0]})
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference(setup, count: int = 1, scheduler: str | None = None):
    model, _, folders = setup
    adapters = [diffusers.T2IAdapter.from_pretrained(f) for f in folders[:count]]
    pipe = diffusers.StableDiffusionAdapterPipeline.from_pretrained(
        model, adapter=adapters[0] if count == 1 else diffusers.MultiAdapter(adapters), safety_checker=None
    )
    if scheduler:
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_bundle_lists_the_adapters_and_their_engines_pass_the_gate(setup, capsys):
    from sdrt.cli.sdrt import main as sdrt_main
    from sdrt.runtime.bundle.bundle import open_bundle

    manifest = open_bundle(setup[1]).manifest
    assert list(manifest.adapters) == ["adapter", "adapter_sketch"]
    assert manifest.source.adapters == [str(f.resolve()) for f in setup[2]]
    unet_inputs = manifest.components["unet"].inputs
    assert [n for n in unet_inputs if "intrablock" in n] == [
        f"down_intrablock_additional_residual_{i}" for i in range(2)
    ]
    for name in ("adapter", "adapter_sketch", "unet"):
        validation = manifest.components[name].validation
        assert validation and validation["value"] <= validation["allowed"], (name, validation)
    assert sdrt_main(["inspect", str(setup[1])]) in (0, None)
    listed = capsys.readouterr().out
    assert f"adapter      adapter_sketch: {setup[2][1].resolve()}" in listed


def test_adapter_engine_matches_diffusers_t2iadapter(setup):
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.components import open_component

    adapter = open_component(open_bundle(setup[1]), "adapter_sketch", "cpu")
    image = np.random.default_rng(0).uniform(0, 1, (2, 1, 64, 96)).astype(np.float32)
    with torch.no_grad():
        expected = diffusers.T2IAdapter.from_pretrained(setup[2][1]).eval()(torch.from_numpy(image))
    actual = adapter(image)
    assert len(actual) == len(expected) == 2
    for a, e in zip(actual, expected):
        assert a.shape == tuple(e.shape)
        assert np.abs(a - e.numpy()).max() <= 1e-4 * np.abs(e.numpy()).max()


@pytest.mark.parametrize(
    ("scheduler", "kwargs"),
    [
        (None, {}),  # the bundle's PNDM
        ("DPMSolverMultistepScheduler", {"adapter_conditioning_scale": 0.6, "height": 64, "width": 48}),
    ],
)
def test_one_adapter_matches_diffusers(setup, scheduler, kwargs):
    args = dict(image=sketch(80), num_inference_steps=STEPS, output_type="np", **kwargs)
    with injected_noise(7) as rng:
        expected = reference(setup, 1, scheduler)(PROMPT, **args).images
    actual = sdrt_pipe(setup, 1, scheduler)(PROMPT, generator=rng, **args).images
    assert actual.shape == expected.shape
    assert_parity(actual, expected)


def test_multi_adapter_matches_diffusers_seeded(setup):
    args = dict(
        image=[sketch(), sketch(flip=True, mode="L")],
        adapter_conditioning_scale=[0.7, 1.3],
        num_inference_steps=STEPS,
        num_images_per_prompt=2,
    )
    ref = reference(setup, 2, "EulerAncestralDiscreteScheduler")
    expected = ref(PROMPT, generator=torch.Generator().manual_seed(3), **args).images
    actual = sdrt_pipe(setup, 2, "EulerAncestralDiscreteScheduler")(PROMPT, generator=3, **args).images
    assert_parity(actual, expected)


def test_the_adapter_image_conditions_and_scale_zero_is_the_plain_pipeline(setup):
    pipe = sdrt_pipe(setup, 1)
    args = dict(num_inference_steps=STEPS, output_type="np", generator=5)
    first = pipe(PROMPT, image=sketch(), **args).images
    second = pipe(PROMPT, image=ImageOps.invert(sketch(flip=True)), **args).images
    assert psnr(first, second) < 35.0  # parity is >= 60 dB: the adapter image moves the picture

    unconditioned = pipe(PROMPT, image=sketch(), adapter_conditioning_scale=0.0, **args).images
    plain = diffusers.StableDiffusionPipeline.from_pretrained(setup[0], safety_checker=None)
    plain.set_progress_bar_config(disable=True)
    kwargs = dict(height=64, width=64, num_inference_steps=STEPS, output_type="np")
    expected = plain(PROMPT, generator=torch.Generator().manual_seed(5), **kwargs).images
    assert_parity(unconditioned, expected)
    assert psnr(first, expected) < 35.0


def test_diffusion_pipeline_loads_the_adapter_pipeline_and_the_bundle_runs_the_plain_one(setup):
    from sdrt.runtime import DiffusionPipeline, StableDiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(setup[1], provider="cpu")
    assert type(pipe).__name__ == "StableDiffusionAdapterPipeline" and len(pipe.adapter) == 2
    assert set(pipe.components) == set(reference(setup, 2).components)  # diffusers' parts, by name
    plain = StableDiffusionPipeline.from_pipe(pipe)
    plain.set_progress_bar_config(disable=True)
    ref = diffusers.StableDiffusionPipeline.from_pretrained(setup[0], safety_checker=None)
    ref.set_progress_bar_config(disable=True)
    kwargs = dict(height=64, width=64, num_inference_steps=STEPS, output_type="np")
    expected = ref(PROMPT, generator=torch.Generator().manual_seed(6), **kwargs).images
    assert_parity(plain(PROMPT, generator=6, **kwargs).images, expected)


def test_wrong_images_are_clear_errors(setup):
    from sdrt.runtime.errors import InputError

    pipe = sdrt_pipe(setup, 1)
    args = dict(num_inference_steps=1, output_type="np")
    with pytest.raises(InputError, match="48x40.*64x64"):  # an array is not resized: it must fit the call
        pipe(PROMPT, image=np.zeros((40, 48, 3), np.float32), height=64, width=64, **args)
    with pytest.raises(InputError, match="1 channel.*takes 3"):
        pipe(PROMPT, image=sketch(mode="L"), **args)
    with pytest.raises(InputError, match="multiple of the adapter's downscale factor 8"):
        pipe(PROMPT, image=sketch(), height=60, **args)


def test_an_adapter_for_another_model_is_refused_at_build(setup, tmp_path, capsys):
    wide = make_adapter(tmp_path / "wide", seed=1, channels=(32, 64))
    out = tmp_path / "bundle"
    assert build(setup[0], out, [str(wide)]) == 2
    message = capsys.readouterr().err
    assert str(wide / "config.json") in message and "another model" in message
    assert not out.exists() and not list(tmp_path.glob(".bundle*"))
    config = json.loads((wide / "config.json").read_text())
    assert config["channels"] == [32, 64]


def _generate(bundle: Path, out: Path, *flags: str) -> int:
    from sdrt.cli.sdrt import main

    argv = ["generate", str(bundle), PROMPT, "--steps", "4", "--seed", "99", "--provider", "cpu"]
    return main([*argv, "--no-progress", "-o", str(out), *flags])


def test_sdrt_generate_adapter_images_with_scales_match_diffusers(setup, tmp_path):
    pictures = [tmp_path / "sketch.png", tmp_path / "gray.png"]
    sketch().save(pictures[0])
    sketch(flip=True, mode="L").save(pictures[1])  # the grayscale adapter's, read as one channel
    flags = ["--adapter-image", str(pictures[0]), "--adapter-image", str(pictures[1])]
    out = tmp_path / "adapter.png"
    assert _generate(setup[1], out, *flags, "--adapter-scale", "0.5", "--adapter-scale", "1.5") == 0
    expected = reference(setup, 2)(
        PROMPT,
        image=[Image.open(p) for p in pictures],
        adapter_conditioning_scale=[0.5, 1.5],
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(99),
    ).images
    assert_parity([Image.open(out)], expected)


def test_sdrt_generate_adapter_image_on_a_bundle_without_adapters_is_a_clear_error(tiny, tmp_path, capsys):
    sketch().save(tmp_path / "sketch.png")
    code = _generate(tiny.bundle("sd1"), tmp_path / "x.png", "--adapter-image", str(tmp_path / "sketch.png"))
    message = capsys.readouterr().err
    assert code == 2 and "has no T2I-Adapter" in message and "build-engine" in message
