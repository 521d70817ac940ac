"""InstructPix2Pix (SD 1.x and SDXL) against diffusers' pipelines of the same names on tiny folders made here
(8-channel UNets): two schedulers each, image guidance below 1 (guidance off, as diffusers), the build (the
UNet's 8 channels and batch of 3 rows per prompt, through the export gate), ``DiffusionPipeline``'s choice,
``sdrt generate --image-guidance`` and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdrt.runtime.errors import InputError, InputTypeError
from tests.parity import assert_parity, build_bundle, injected_noise
from tests.runtime.pipelines.test_img2img_inpaint import init_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "turn it into a red cat"
STEPS = 4
OPTIONS = ["--min-size", "32", "--max-size", "128", "--max-batch", "2"]


def make_instruct_pix2pix(folder: Path, *, seed: int = 60) -> Path:
    """An SD 1.x-shaped InstructPix2Pix folder: 8-channel UNet (latents, image latents)."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    from tests.models import _finish_tokenizers, _scheduler, _text_encoder, _tokenizer, _unet, _vae

    tokenizer = _tokenizer()
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        tokenizer=tokenizer,
        unet=_unet(seed=seed + 3, in_channels=8),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=True)
    return folder


def make_sdxl_instruct_pix2pix(folder: Path, *, seed: int = 70) -> Path:
    """An SDXL-shaped InstructPix2Pix folder: the tiny SDXL base's parts with an 8-channel UNet."""
    from diffusers import StableDiffusionXLInstructPix2PixPipeline

    from tests.models import _finish_tokenizers, _sdxl_unet, _text_encoder, _tokenizer, _vae
    from tests.sdxl_models import _scheduler

    tokenizer, tokenizer_2 = _tokenizer(), _tokenizer(pad_token="!")
    pipe = StableDiffusionXLInstructPix2PixPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        text_encoder_2=_text_encoder(tokenizer_2, seed=seed + 4, projection=True, hidden_act="gelu"),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=_sdxl_unet(seed=seed + 3, in_channels=8),
        scheduler=_scheduler(),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=True)
    return folder


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> tuple[Path, Path]:
    """(folder, bundle): the SD InstructPix2Pix bundle, built with the export's validation gate on."""
    from sdrt.cli.build_engine import main as build_engine

    root = tmp_path_factory.mktemp("instruct_pix2pix")
    folder = make_instruct_pix2pix(root / "model")
    bundle = root / "bundle"
    argv = [str(folder), "-o", str(bundle), "--backend", "ort", "--precision", "fp32", "-q", *OPTIONS]
    assert build_engine(argv) in (0, None)
    return folder, bundle


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sdxl_instruct_pix2pix")
    folder = make_sdxl_instruct_pix2pix(root / "model")
    return folder, build_bundle(folder, root / "bundle", OPTIONS)


def pair(built: tuple[Path, Path], name: str, scheduler: str):
    """(sdrt's pipeline ``name`` on the bundle, diffusers' on the folder), both with ``scheduler``."""
    import sdrt.runtime
    from sdrt import schedulers

    folder, bundle = built
    pipe = getattr(sdrt.runtime, name).from_pretrained(bundle, provider="cpu")
    pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    extra = {"add_watermarker": False} if "XL" in name else {}
    ref = getattr(diffusers, name).from_pretrained(folder, **extra)
    ref.scheduler = getattr(diffusers, scheduler).from_config(ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    return pipe, ref


def compare(pipe, ref, seed: int, **kwargs) -> None:
    kwargs = {"image": init_image(), "num_inference_steps": STEPS, "output_type": "np", **kwargs}
    with injected_noise(seed) as rng:
        expected = ref(PROMPT, **kwargs).images
    assert_parity(pipe(PROMPT, generator=rng, **kwargs).images, expected)


@pytest.mark.parametrize("scheduler", ["PNDMScheduler", "EulerAncestralDiscreteScheduler"])
def test_matches_diffusers(sd, scheduler):
    pipe, ref = pair(sd, "StableDiffusionInstructPix2PixPipeline", scheduler)
    compare(pipe, ref, 61)
    compare(pipe, ref, 62, negative_prompt="blue", image_guidance_scale=2.5, num_images_per_prompt=2)


def test_image_guidance_below_one_turns_guidance_off(sd):
    """diffusers guides only when guidance_scale > 1 and image_guidance_scale >= 1: the prompt alone here."""
    pipe, ref = pair(sd, "StableDiffusionInstructPix2PixPipeline", "DDIMScheduler")
    seen = []

    def spy(p, i, t, tensors):
        seen.append(
            (p.do_classifier_free_guidance, p.image_guidance_scale, tensors["image_latents"].shape[0])
        )
        return {}

    inputs = ["latents", "image_latents"]
    compare(
        pipe,
        ref,
        63,
        image_guidance_scale=0.9,
        callback_on_step_end=spy,
        callback_on_step_end_tensor_inputs=inputs,
    )
    assert seen and set(seen) == {(False, 0.9, 1)}  # diffusers' calls, then sdrt's


def test_bundle_and_automatic_pipeline(sd):
    from sdrt.runtime import DiffusionPipeline, StableDiffusionInstructPix2PixPipeline

    _, bundle = sd
    manifest = json.loads((bundle / "manifest.json").read_text())
    unet = manifest["components"]["unet"]
    assert manifest["model_type"] == "instruct-pix2pix"
    assert unet["inputs"]["sample"]["shape"][1] == 8
    assert unet["dims"]["batch"] == [1, 6]  # 3 rows (text, image, neither) for each of --max-batch 2 prompts
    assert unet["validation"]["value"] <= unet["validation"]["threshold"]  # the export gate against torch
    pipe = DiffusionPipeline.from_pretrained(bundle, provider="cpu")
    assert type(pipe) is StableDiffusionInstructPix2PixPipeline


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(image=None), InputError, "`image` input cannot be undefined"),
        (dict(image=np.zeros((64, 64, 2), np.float32)), InputError, "`image` must have 3 channels"),
        (dict(image="cat.png"), InputError, "image"),
        (dict(image=[init_image()] * 3, num_images_per_prompt=2), InputError, "Cannot duplicate `image`"),
        (dict(image_guidance_scale=float("nan")), InputError, "`image_guidance_scale` must be finite"),
        (dict(image_guidance_scale="high"), InputTypeError, "`image_guidance_scale` must be a number"),
        (dict(strength=0.5), InputTypeError, r"unexpected keyword arguments \['strength'\]"),
    ],
)
def test_bad_input_is_a_clear_error(sd, kwargs, error, message):
    from sdrt.runtime import StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(sd[1], provider="cpu")
    with pytest.raises(error, match=message):
        pipe(PROMPT, **{"image": init_image(), "num_inference_steps": 2, **kwargs})


def test_generate_with_image_guidance_matches_diffusers(sd, tmp_path):
    from sdrt.cli.sdrt import main

    folder, bundle = sd
    image, out = tmp_path / "cat.png", tmp_path / "edited.png"
    init_image().save(image)
    argv = ["generate", str(bundle), PROMPT, "--image", str(image), "--image-guidance", "2", "--steps", "4"]
    assert main([*argv, "--seed", "7", "--provider", "cpu", "--no-progress", "-o", str(out)]) == 0
    ref = diffusers.StableDiffusionInstructPix2PixPipeline.from_pretrained(folder)
    ref.set_progress_bar_config(disable=True)
    expected = ref(
        PROMPT,
        image=Image.open(image).convert("RGB"),
        image_guidance_scale=2.0,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(7),
    ).images
    assert_parity([Image.open(out)], expected)


def test_image_guidance_flag_needs_an_instruct_pix2pix_bundle():
    from sdrt.cli.task_choice import ImageInputs, chosen_task

    with pytest.raises(InputError, match="--image-guidance: .* not an InstructPix2Pix one"):
        chosen_task("sd1", ImageInputs(image=Path("cat.png"), image_guidance=1.5))
    with pytest.raises(InputError, match="an InstructPix2Pix model: pass --image"):
        chosen_task("instruct-pix2pix", ImageInputs(image_guidance=1.5))


@pytest.mark.parametrize("scheduler", ["EulerDiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_sdxl_matches_diffusers(sdxl, scheduler):
    pipe, ref = pair(sdxl, "StableDiffusionXLInstructPix2PixPipeline", scheduler)
    assert pipe.unet.config.in_channels == 8
    compare(pipe, ref, 71, height=48, width=64)
    both = dict(
        negative_prompt="blue", image_guidance_scale=2.0, guidance_rescale=0.5, num_images_per_prompt=2
    )
    compare(pipe, ref, 72, **both)
    compare(pipe, ref, 73, image_guidance_scale=0.5)  # guidance off


def test_sdxl_bundle(sdxl):
    from sdrt.runtime import DiffusionPipeline, StableDiffusionXLInstructPix2PixPipeline

    pipe = DiffusionPipeline.from_pretrained(sdxl[1], provider="cpu")
    assert type(pipe) is StableDiffusionXLInstructPix2PixPipeline
    assert pipe.bundle.model_type == "sdxl-instruct-pix2pix"
    assert pipe.unet.record.dims["batch"] == (1, 6)


@pytest.mark.parametrize(
    "name", ["StableDiffusionInstructPix2PixPipeline", "StableDiffusionXLInstructPix2PixPipeline"]
)
def test_call_arguments_and_defaults_are_diffusers(name):
    import inspect

    import sdrt.runtime

    def arguments(cls):
        parameters = inspect.signature(cls.__call__).parameters.values()
        return {
            p.name: list(p.default) if isinstance(p.default, (list, tuple)) else p.default for p in parameters
        }

    assert arguments(getattr(sdrt.runtime, name)) == arguments(getattr(diffusers, name))
