"""``build-engine --vae TINY``: a tiny VAE (diffusers' ``AutoencoderTiny``, TAESD's layout) as the bundle's VAE
encoder and decoder; its images are diffusers' with ``vae=AutoencoderTiny.from_pretrained(TINY)``. And
``--preview-vae TINY``: a second tiny decoder beside the VAE, ``pipe.vae.decode_preview(latents)``."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.cli.build_engine import main
from tests.parity import PARITY_DB, assert_parity, build_bundle, initial_latents, injected_noise, psnr
from tests.runtime.pipelines.test_img2img_inpaint import init_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
OPTIONS = ["--min-size", "32", "--max-size", "64", "--max-batch", "1"]


def save_tiny_vae(path, *, seed: int = 5, latent_channels: int = 4, scaling_factor: float = 1.0):
    """A TAESD-shaped ``AutoencoderTiny`` with few channels and blocks (8 pixels per latent pixel)."""
    torch.manual_seed(seed)
    vae = diffusers.AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=latent_channels,
        scaling_factor=scaling_factor,
    ).eval()
    vae.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_vae_bundle(model_folders, tmp_path_factory):
    """(the sd1 model folder, its TAESD-like VAE folder, the bundle built with ``--vae`` that VAE); the bundle
    also holds another tiny VAE's decoder (``--preview-vae``, scaling factor 0.5 to see it divided out)."""
    root = tmp_path_factory.mktemp("tiny_vae")
    model, vae = model_folders("sd1"), save_tiny_vae(root / "taesd")
    preview = save_tiny_vae(root / "taesd-preview", seed=9, scaling_factor=0.5)
    options = [*OPTIONS, "--vae", str(vae), "--preview-vae", str(preview)]
    return model, vae, build_bundle(model, root / "bundle", options)


def reference(class_name, model, vae):
    pipe = getattr(diffusers, class_name).from_pretrained(
        model, vae=diffusers.AutoencoderTiny.from_pretrained(vae)
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdrt_pipeline(class_name, bundle):
    import sdrt.runtime

    pipe = getattr(sdrt.runtime, class_name).from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_manifest_and_inspect_say_the_bundle_holds_a_tiny_vae(tiny_vae_bundle):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.runtime.bundle.bundle import open_bundle

    _, _, path = tiny_vae_bundle
    bundle = open_bundle(path)
    assert bundle.manifest.vae.class_name == "AutoencoderTiny"
    assert bundle.manifest.vae.scaling_factor == 1.0
    assert bundle.record("vae_encoder").class_name == "AutoencoderTiny"
    assert "vae class    AutoencoderTiny" in describe_bundle(bundle)


def test_txt2img_with_tiny_vae_matches_diffusers(tiny_vae_bundle):
    model, vae, bundle = tiny_vae_bundle
    latents = initial_latents((1, 4, 8, 8), seed=3)
    kwargs = dict(num_inference_steps=3, output_type="np")
    actual = sdrt_pipeline("StableDiffusionPipeline", bundle)(PROMPT, latents=latents, **kwargs).images
    expected = reference("StableDiffusionPipeline", model, vae)(
        PROMPT, latents=torch.from_numpy(latents), **kwargs
    ).images
    assert_parity(actual, expected)
    own = diffusers.StableDiffusionPipeline.from_pretrained(model)
    own.set_progress_bar_config(disable=True)
    assert psnr(actual, own(PROMPT, latents=torch.from_numpy(latents), **kwargs).images) < PARITY_DB


def test_img2img_with_tiny_vae_matches_diffusers(tiny_vae_bundle):
    """The tiny encoder's latents are taken as they are (diffusers' ``retrieve_latents`` reads ``.latents``
    and draws no noise), so the noise that follows is the same draw in both."""
    model, vae, bundle = tiny_vae_bundle
    kwargs = dict(image=init_image(64), strength=0.7, num_inference_steps=4, output_type="np")
    with injected_noise(11) as rng:
        expected = reference("StableDiffusionImg2ImgPipeline", model, vae)(PROMPT, **kwargs).images
    actual = sdrt_pipeline("StableDiffusionImg2ImgPipeline", bundle)(PROMPT, generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_tiny_vae_of_other_latent_width_is_refused_naming_the_fix(model_folders, tmp_path, capsys):
    wide = save_tiny_vae(tmp_path / "taesd3", latent_channels=16)
    out = tmp_path / "out"
    code = main([str(model_folders("sd1")), "-o", str(out), "--vae", str(wide), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"--vae {wide}" in err and "its latent_channels is 16, the model's VAE has 4" in err
    assert "TAESD for SD 1.x/2.x, TAESDXL for SDXL" in err
    assert not out.exists()


def test_preview_decoder_decodes_the_pipelines_latents_as_diffusers_would(tiny_vae_bundle):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.runtime.bundle.bundle import open_bundle

    _, vae, bundle = tiny_vae_bundle
    preview = vae.parent / "taesd-preview"
    assert f"preview vae  {preview.resolve()}" in describe_bundle(open_bundle(bundle))
    pipe = sdrt_pipeline("StableDiffusionPipeline", bundle)
    latents = pipe(
        PROMPT, latents=initial_latents((1, 4, 8, 8), seed=4), num_inference_steps=2, output_type="latent"
    )
    actual = pipe.vae.decode_preview(latents.images)
    tiny = diffusers.AutoencoderTiny.from_pretrained(preview)
    with torch.no_grad():
        expected = tiny.decode(torch.from_numpy(latents.images) / tiny.config.scaling_factor).sample.numpy()
    assert_parity((actual + 1) / 2, (expected + 1) / 2)


def test_preview_vae_must_be_a_tiny_vae(model_folders, tmp_path, capsys):
    model = model_folders("sd1")
    code = main([str(model), "-o", str(tmp_path / "out"), "--preview-vae", str(model / "vae"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--preview-vae" in err and "is an AutoencoderKL" in err and "TAESD" in err, err


def test_step_previews_use_the_preview_vae(tiny_vae_bundle):
    """``previews.preview_images`` in a step callback: the preview VAE's pictures, as diffusers' decodes them."""
    from sdrt.runtime.pipelines.previews import preview_images

    _, vae, bundle = tiny_vae_bundle
    pipe = sdrt_pipeline("StableDiffusionPipeline", bundle)
    seen = []

    def on_step(p, step, timestep, tensors):
        seen.append((tensors["latents"].copy(), preview_images(p, tensors["latents"])))
        return {}

    pipe(PROMPT, num_inference_steps=2, height=64, width=64, callback_on_step_end=on_step)
    latents, previews = seen[-1]
    tiny = diffusers.AutoencoderTiny.from_pretrained(vae.parent / "taesd-preview")
    with torch.no_grad():
        decoded = tiny.decode(torch.from_numpy(latents) / tiny.config.scaling_factor).sample
    expected = ((decoded * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round()
    assert previews[0].size == (64, 64)
    assert np.abs(expected[0] - np.asarray(previews[0])).max() <= 2
