"""Stable Diffusion's upscalers (StableDiffusionUpscalePipeline, StableDiffusionLatentUpscalePipeline) against
diffusers' pipelines of the same names on tiny folders made here from diffusers classes, fp32 CPU, seeded alike.
The x4 upscaler with two schedulers; the latent upscaler with EulerDiscreteScheduler only, the one diffusers'
pipeline runs (its loop reads ``scheduler.sigmas`` and steps on Euler's preconditioned prediction)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.parity import PARITY_DB, assert_parity, build_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
PROMPT = "a photo of a red cat"


def _text_parts(seed):
    from tests.models import _text_encoder, _tokenizer

    tokenizer = _tokenizer()
    return tokenizer, _text_encoder(tokenizer, seed=seed, hidden_act="gelu")


def _save(pipe, folder):
    from tests.models import _finish_tokenizers

    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=False)
    return folder


def make_x4(folder):
    """A stable-diffusion-x4-upscaler-shaped folder: a 7-channel UNet with class embeddings (the noise level), a
    3-block VAE (scale factor 4), DDPM as the low-resolution scheduler, DDIM v-prediction."""
    from tests.models import _unet

    torch.manual_seed(1)
    vae = diffusers.AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=0.08333,  # the x4 upscaler's, which diffusers sets whatever the config says
    ).eval()
    tokenizer, text_encoder = _text_parts(2)
    unet = _unet(seed=3, in_channels=7, num_class_embeds=1000, use_linear_projection=True)
    pipe = diffusers.StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=diffusers.DDPMScheduler(),
        scheduler=diffusers.DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )
    return _save(pipe, folder)


@pytest.fixture(scope="module")
def x4(tmp_path_factory):
    root = tmp_path_factory.mktemp("x4")
    folder = make_x4(root / "x4")
    options = ["--min-size", "32", "--max-size", "128", "--max-batch", "2"]  # 8..32 px low-resolution images
    options += ["--components", "text_encoder", "unet", "vae_decoder"]
    return SimpleNamespace(folder=folder, bundle=build_bundle(folder, root / "b", options))


def _pipes(case, name, scheduler=None):
    from sdrt.runtime import DiffusionPipeline
    from sdrt.schedulers import get_scheduler_class

    if not hasattr(case, "pipe"):  # loaded once per module; each test sets its scheduler
        case.ref = getattr(diffusers, name).from_pretrained(case.folder)
        case.ref.set_progress_bar_config(disable=True)
        case.ref_scheduler = case.ref.scheduler.config
        case.pipe = DiffusionPipeline.from_pretrained(case.bundle, provider="cpu")
        case.pipe.set_progress_bar_config(disable=True)
    ref, pipe = case.ref, case.pipe
    assert type(pipe).__name__ == name  # the folder's class names the pipeline
    scheduler = scheduler or case.ref_scheduler["_class_name"]
    ref.scheduler = getattr(diffusers, scheduler).from_config(case.ref_scheduler)
    pipe.scheduler = get_scheduler_class(scheduler).from_config(ref.scheduler.config)
    return ref, pipe


def _picture(size=(18, 17), seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.uniform(0, 1, (size[1], size[0], 3)) * 255).astype(np.uint8))


@pytest.mark.parametrize("scheduler", ["DDIMScheduler", "EulerDiscreteScheduler"])
def test_x4_matches_diffusers(x4, scheduler):
    ref, pipe = _pipes(x4, "StableDiffusionUpscalePipeline", scheduler)
    image = _picture()  # floored to 16x16 (bicubic), as diffusers' image processor does
    kwargs = {"num_inference_steps": 3, "noise_level": 40, "guidance_scale": 6.0, "output_type": "np"}
    expected = ref(PROMPT, image=image, generator=torch.Generator().manual_seed(3), **kwargs).images
    actual = pipe(PROMPT, image=image, generator=3, **kwargs).images
    assert actual.shape == (1, 64, 64, 3)
    assert_parity(actual, expected, threshold=PARITY_DB)


def test_x4_batch_and_images_per_prompt(x4):
    ref, pipe = _pipes(x4, "StableDiffusionUpscalePipeline")
    pictures = [_picture((16, 24), 1), _picture((16, 24), 2)]
    kwargs = {"num_inference_steps": 2, "negative_prompt": ["a dog"] * 2, "output_type": "np"}
    expected = ref(
        [PROMPT, "a blue square"], image=pictures, generator=torch.Generator().manual_seed(4), **kwargs
    )
    actual = pipe([PROMPT, "a blue square"], image=pictures, generator=4, **kwargs)
    assert_parity(actual.images, expected.images, threshold=PARITY_DB)
    kwargs = {"num_inference_steps": 2, "num_images_per_prompt": 2, "noise_level": 0, "output_type": "np"}
    expected = ref(PROMPT, image=pictures[0], generator=torch.Generator().manual_seed(5), **kwargs).images
    assert_parity(
        pipe(PROMPT, image=pictures[0], generator=5, **kwargs).images, expected, threshold=PARITY_DB
    )


def test_x4_refuses_bad_input(x4):
    from sdrt.runtime.errors import InputError, InputTypeError

    _, pipe = _pipes(x4, "StableDiffusionUpscalePipeline")
    for kwargs, error, said in (
        ({"image": _picture((40, 40))}, InputError, "`image` of 40x40 pixels makes a 160x160 output"),
        ({"image": np.zeros((1, 4, 16, 16), np.float32)}, InputError, "`image`"),
        ({"image": "not-a-file.png"}, InputError, "image"),
        ({"image": 3}, InputTypeError, "`image`"),
        ({"image": None}, InputError, "`image`"),
        ({"image": _picture(), "noise_level": 351}, InputError, "`noise_level` has to be <= 350 but is 351"),
        ({"image": _picture(), "noise_level": -1}, InputError, "`noise_level`"),
        ({"image": _picture(), "noise_level": 2.5}, InputTypeError, "`noise_level`"),
        ({"image": [_picture(), _picture()]}, InputError, "`image` has batch size 2"),
    ):
        with pytest.raises(error, match=said):
            pipe(PROMPT, num_inference_steps=1, **kwargs)


def make_latent_x2(folder):
    """An sd-x2-latent-upscaler-shaped folder: a K-diffusion UNet (Fourier time embedding, 8 channels in, 5 out,
    ``time_cond_proj_dim`` = 128 + the text width), Euler with sample prediction (as the published model)."""
    from tests.models import TEXT_HIDDEN, _vae

    torch.manual_seed(4)
    unet = diffusers.UNet2DConditionModel(
        act_fn="gelu",
        attention_head_dim=8,
        norm_num_groups=None,
        block_out_channels=(32, 32, 64, 64),  # diffusers' test UNet: K blocks norm in groups of 32 channels
        layers_per_block=1,
        time_cond_proj_dim=128 + TEXT_HIDDEN,
        conv_in_kernel=1,
        conv_out_kernel=1,
        cross_attention_dim=TEXT_HIDDEN,
        down_block_types=(
            "KDownBlock2D",
            "KCrossAttnDownBlock2D",
            "KCrossAttnDownBlock2D",
            "KCrossAttnDownBlock2D",
        ),
        in_channels=8,
        mid_block_type=None,
        only_cross_attention=False,
        out_channels=5,
        resnet_time_scale_shift="scale_shift",
        time_embedding_type="fourier",
        timestep_post_act="gelu",
        up_block_types=("KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KUpBlock2D"),
        sample_size=16,  # traced at 16x16 latents: 3 downsamplings leave 2x2
    ).eval()
    tokenizer, text_encoder = _text_parts(5)
    scheduler = diffusers.EulerDiscreteScheduler(
        prediction_type="sample", beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    pipe = diffusers.StableDiffusionLatentUpscalePipeline(
        vae=_vae(seed=6), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
    )
    return _save(pipe, folder)


@pytest.fixture(scope="module")
def x2(tmp_path_factory):
    root = tmp_path_factory.mktemp("x2")
    folder = make_latent_x2(root / "x2")
    options = ["--min-size", "64", "--max-size", "128", "--max-batch", "1"]  # 64 px pictures (8x8 latents) in
    return SimpleNamespace(folder=folder, bundle=build_bundle(folder, root / "b", options))


def test_latent_upscaler_matches_diffusers(x2):
    """EulerDiscreteScheduler only: diffusers' loop is Euler's (see the module docstring)."""
    ref, pipe = _pipes(x2, "StableDiffusionLatentUpscalePipeline")
    image = _picture((70, 67))  # floored to 64x64 (bicubic), encoded by the VAE with the generator's noise
    kwargs = {
        "num_inference_steps": 3,
        "guidance_scale": 4.0,
        "negative_prompt": "a dog",
        "output_type": "np",
    }
    expected = ref(PROMPT, image=image, generator=torch.Generator().manual_seed(7), **kwargs).images
    actual = pipe(PROMPT, image=image, generator=7, **kwargs).images
    assert actual.shape == (1, 128, 128, 3)
    assert_parity(actual, expected, threshold=PARITY_DB)


def test_latent_upscaler_takes_latents(x2):
    """Latents in (a torch tensor, as diffusers; sdrt's own NCHW arrays), guidance off at scale 0 (the empty prompt)."""
    ref, pipe = _pipes(x2, "StableDiffusionLatentUpscalePipeline")
    latents = torch.from_numpy(np.random.default_rng(3).standard_normal((1, 4, 8, 8)).astype(np.float32))
    kwargs = {"num_inference_steps": 2, "guidance_scale": 0.0, "output_type": "np"}
    expected = ref(PROMPT, image=latents, generator=torch.Generator().manual_seed(8), **kwargs).images
    assert_parity(pipe(PROMPT, image=latents, generator=8, **kwargs).images, expected, threshold=PARITY_DB)
    assert_parity(
        pipe(PROMPT, image=latents.numpy(), generator=8, **kwargs).images, expected, threshold=PARITY_DB
    )


def test_latent_upscaler_refuses_bad_input(x2):
    from sdrt.runtime.errors import InputError, InputTypeError

    _, pipe = _pipes(x2, "StableDiffusionLatentUpscalePipeline")
    for kwargs, error, said in (
        ({"image": _picture((128, 128))}, InputError, "makes a 256x256 output"),
        ({"image": np.zeros((1, 16, 16), np.float32)}, InputError, "`image`"),
        ({"image": 3}, InputTypeError, "`image`"),
        ({"image": None}, InputError, "`image`"),
        ({"image": [_picture((64, 64))] * 2}, InputError, "`image` has batch size 2"),
        ({"image": _picture((64, 64)), "noise_level": 3}, InputTypeError, "noise_level"),
    ):
        with pytest.raises(error, match=said):
            pipe(PROMPT, num_inference_steps=1, **kwargs)


def test_generate_upscales(x4, x2, tmp_path, capsys):
    """``sdrt generate BUNDLE PROMPT --image LOW_RES`` on an upscaler bundle: diffusers' image of the same seed."""
    from sdrt.cli.sdrt import main

    for case, name, size in (
        (x4, "StableDiffusionUpscalePipeline", 16),
        (x2, "StableDiffusionLatentUpscalePipeline", 64),
    ):
        low, out = tmp_path / f"low{size}.png", tmp_path / f"out{size}.png"
        _picture((size, size), 9).save(low)
        args = ["generate", str(case.bundle), PROMPT, "--image", str(low), "--steps", "2", "--seed", "1"]
        assert main([*args, "--guidance", "5", "--no-progress", "-o", str(out)]) == 0
        ref = getattr(diffusers, name).from_pretrained(case.folder)
        ref.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(1)
        expected = ref(
            PROMPT, image=Image.open(low), num_inference_steps=2, guidance_scale=5, generator=generator
        )
        assert_parity([Image.open(out)], expected.images, threshold=PARITY_DB)
    for bundle, extra, said in (
        (x4, [], "x4 upscaler model: pass --image"),
        (x4, ["--image", str(low), "--mask", str(low)], "--mask"),
        (x4, ["--image", str(low), "--size", "64x64"], "--size does not apply"),
        (x2, ["--image", str(low), "--num-images", "2"], "--num-images"),
    ):
        assert main(["generate", str(bundle.bundle), PROMPT, *extra, "--no-progress", "-o", str(out)]) == 2
        assert said in capsys.readouterr().err


@pytest.mark.slow
def test_export_gates(tmp_path):
    """Every engine of both upscalers passes build-engine's validation against torch (the class-labelled UNet, the
    text encoder's pooled outputs, the K-diffusion UNet with its resampling as depthwise convolutions)."""
    from sdrt.cli.build_engine import main
    from sdrt.runtime.bundle.bundle import open_bundle

    for maker, sizes in (
        (make_x4, ["32", "128"]),
        (make_latent_x2, ["128", "256"]),
    ):  # the K-UNet: 16+ latents
        folder, out = maker(tmp_path / maker.__name__), tmp_path / f"{maker.__name__}-bundle"
        args = [
            str(folder),
            "-o",
            str(out),
            "--backend",
            "ort",
            "--precision",
            "fp32",
            "--max-batch",
            "1",
            "-q",
        ]
        assert main([*args, "--min-size", sizes[0], "--max-size", sizes[1]]) in (0, None)
        records = open_bundle(out).manifest.components
        assert {"text_encoder", "unet", "vae_decoder", "vae_encoder"} <= set(records)
        assert all(record.validation is not None for record in records.values())
