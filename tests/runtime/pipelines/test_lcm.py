"""Latent consistency models against diffusers on tiny models made here (ORT CPU, fp32): an LCM folder
(``LatentConsistencyModelPipeline``, txt2img and img2img), an LCM UNet in a ``StableDiffusionPipeline`` folder
and in an SDXL one (diffusers passes the guidance embedding as ``timestep_cond`` there too), and an old bundle
whose UNet lacks ``timestep_cond``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.parity import (
    BUILD_OPTIONS,
    PARITY_DB,
    assert_parity,
    build_bundle,
    initial_latents,
    injected_noise,
    psnr,
)

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("onnxruntime")

PROMPT = "a photo of a red cat"
COND_DIM = 32  # the UNet's time_cond_proj_dim (256 in the published LCMs)
OPTIONS = ["--min-size", "32", "--max-size", "128", "--max-batch", "2"]


def _lcm_scheduler():
    from diffusers import LCMScheduler

    return LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)


def _save(pipe, folder: Path, *, keep_tokenizer_json: bool = False) -> Path:
    from tests.models import _finish_tokenizers

    pipe.save_pretrained(folder)
    _finish_tokenizers(folder, keep_tokenizer_json=keep_tokenizer_json)
    return folder


def make_lcm(folder: Path, pipeline_class: str = "LatentConsistencyModelPipeline", seed: int = 0) -> Path:
    """The tiny SD 1.x model with an LCM UNet (``time_cond_proj_dim``) and ``LCMScheduler``."""
    import diffusers

    from tests.models import _text_encoder, _tokenizer, _unet, _vae

    tokenizer = _tokenizer()
    pipe = getattr(diffusers, pipeline_class)(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        tokenizer=tokenizer,
        unet=_unet(seed=seed + 3, time_cond_proj_dim=COND_DIM),
        scheduler=_lcm_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _save(pipe, folder)


def make_sdxl_lcm(folder: Path, seed: int = 0) -> Path:
    """The tiny SDXL model with an LCM UNet (as LCM-distilled SDXL) and ``LCMScheduler``."""
    from diffusers import StableDiffusionXLPipeline

    from tests.models import TEXT_HIDDEN, TEXT_PROJECTION, _text_encoder, _tokenizer, _unet, _vae

    tokenizer, tokenizer_2 = _tokenizer(), _tokenizer(pad_token="!")
    unet = _unet(
        seed=seed + 3,
        cross_attention_dim=2 * TEXT_HIDDEN,
        attention_head_dim=[2, 4],
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=TEXT_PROJECTION + 6 * 8,
        transformer_layers_per_block=[1, 2],
        time_cond_proj_dim=COND_DIM,
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(seed=seed + 1),
        text_encoder=_text_encoder(tokenizer, seed=seed + 2),
        text_encoder_2=_text_encoder(tokenizer_2, seed=seed + 4, projection=True, hidden_act="gelu"),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_lcm_scheduler(),
        force_zeros_for_empty_prompt=True,
    )
    return _save(pipe, folder, keep_tokenizer_json=True)


class Models:
    """Each tiny LCM folder and its bundle, made once for this module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folders: dict[str, Path] = {}
        self.bundles: dict[str, Path] = {}

    def folder(self, kind: str) -> Path:
        if kind not in self.folders:
            path = self.root / kind
            if kind == "lcm":
                self.folders[kind] = make_lcm(path)
            elif kind == "sd1-lcm-unet":
                self.folders[kind] = make_lcm(path, "StableDiffusionPipeline")
            else:
                self.folders[kind] = make_sdxl_lcm(path)
        return self.folders[kind]

    def bundle(self, kind: str) -> Path:
        if kind not in self.bundles:
            options = BUILD_OPTIONS["sdxl"] if kind == "sdxl-lcm" else OPTIONS
            self.bundles[kind] = build_bundle(self.folder(kind), self.root / f"bundle_{kind}", options)
        return self.bundles[kind]

    def pair(self, kind: str, class_name: str):
        """diffusers' pipeline on the folder and sdrt's on the bundle, both ``class_name``."""
        import diffusers

        import sdrt.runtime

        ref = getattr(diffusers, class_name).from_pretrained(self.folder(kind))
        ref.set_progress_bar_config(disable=True)
        pipe = getattr(sdrt.runtime, class_name).from_pretrained(self.bundle(kind), provider="cpu")
        pipe.set_progress_bar_config(disable=True)
        return ref, pipe


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return Models(tmp_path_factory.mktemp("lcm"))


def init_image(size: int = 64):
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size] / size
    pixels = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], axis=-1)
    return Image.fromarray((pixels * 255).astype(np.uint8))


def test_guidance_scale_embedding_matches_diffusers():
    from diffusers import LatentConsistencyModelPipeline

    from sdrt.runtime.pipelines.sampling import guidance_scale_embedding

    w = torch.tensor([0.0, 1.5, 7.5])
    for dim in (32, 33, 256):
        expected = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim)
        # torch's and NumPy's float32 exp differ by an ulp at some frequencies: the angles (up to w x 1000)
        # then differ by about an ulp of 7500, 0.0005
        np.testing.assert_allclose(guidance_scale_embedding(w.numpy(), dim), expected.numpy(), atol=1e-3)


def test_lcm_folder_and_bundle(models):
    import sdrt.runtime

    manifest = json.loads((models.bundle("lcm") / "manifest.json").read_text())
    assert manifest["model_type"] == "lcm"
    assert manifest["unet"]["time_cond_proj_dim"] == COND_DIM
    assert manifest["components"]["unet"]["inputs"]["timestep_cond"]["shape"] == ["batch", COND_DIM]
    pipe = sdrt.runtime.DiffusionPipeline.from_pretrained(models.bundle("lcm"), provider="cpu")
    assert type(pipe).__name__ == "LatentConsistencyModelPipeline"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"num_inference_steps": 2, "guidance_scale": 3.0, "num_images_per_prompt": 2},
        {"original_inference_steps": 20, "num_inference_steps": 3},
        {"timesteps": [999, 759, 499, 259]},
    ],
)
def test_lcm_text_to_image(models, kwargs):
    ref, pipe = models.pair("lcm", "LatentConsistencyModelPipeline")
    batch = kwargs.get("num_images_per_prompt", 1)
    latents = initial_latents((batch, 4, 8, 8), seed=4)
    with injected_noise(5) as rng:
        expected = ref(PROMPT, latents=torch.from_numpy(latents), output_type="np", **kwargs).images
    actual = pipe(PROMPT, latents=latents, generator=rng, output_type="np", **kwargs).images
    assert_parity(actual, expected)


@pytest.mark.parametrize("kwargs", [{}, {"strength": 0.5, "num_inference_steps": 2, "guidance_scale": 2.0}])
def test_lcm_image_to_image(models, kwargs):
    ref, pipe = models.pair("lcm", "LatentConsistencyModelImg2ImgPipeline")
    with injected_noise(6) as rng:
        expected = ref(PROMPT, image=init_image(), output_type="np", **kwargs).images
    actual = pipe(PROMPT, image=init_image(), generator=rng, output_type="np", **kwargs).images
    assert_parity(actual, expected)


def test_lcm_unet_in_a_stable_diffusion_folder(models):
    """diffusers' StableDiffusionPipeline passes ``timestep_cond`` (and skips the guidance batch) for such a
    UNet; the image depends on the embedding (a bundle dropping it gave 22-26 dB)."""
    from diffusers import LCMScheduler

    ref, pipe = models.pair("sd1-lcm-unet", "StableDiffusionPipeline")
    assert type(ref.scheduler) is LCMScheduler
    latents = initial_latents((1, 4, 8, 8), seed=7)
    images = []
    for guidance_scale in (1.0, 6.0):
        kwargs = dict(num_inference_steps=4, guidance_scale=guidance_scale, output_type="np")
        with injected_noise(8) as rng:
            expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
        actual = pipe(PROMPT, latents=latents, generator=rng, **kwargs).images
        assert_parity(actual, expected)
        images.append(actual)
    assert psnr(*images) < PARITY_DB  # the embedding changes the image: dropping it would fail the parity


def test_sdxl_with_an_lcm_unet(models):
    ref, pipe = models.pair("sdxl-lcm", "StableDiffusionXLPipeline")
    latents = initial_latents((1, 4, 8, 8), seed=9)
    kwargs = dict(num_inference_steps=4, guidance_scale=4.0, output_type="np")
    with injected_noise(10) as rng:
        expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, generator=rng, **kwargs).images
    assert_parity(actual, expected)


def test_old_bundle_without_timestep_cond_is_refused(models, tmp_path):
    import sdrt.runtime
    from sdrt.runtime.errors import BundleError

    old = shutil.copytree(models.bundle("lcm"), tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["components"]["unet"]["inputs"]["timestep_cond"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"timestep_cond.*build-engine MODEL -o BUNDLE --force"):
        sdrt.runtime.LatentConsistencyModelPipeline.from_pretrained(old, provider="cpu")


def test_sdrt_generate_with_the_lcm_scheduler(models, tmp_path):
    """``sdrt generate --scheduler lcm``: 4 steps by default on an LCM bundle, diffusers' image for the seed."""
    from PIL import Image

    from sdrt.cli.sdrt import main

    ref, _ = models.pair("lcm", "LatentConsistencyModelPipeline")
    out = tmp_path / "cat.png"
    args = [
        "generate",
        str(models.bundle("lcm")),
        PROMPT,
        "--scheduler",
        "lcm",
        "--seed",
        "3",
        "-o",
        str(out),
    ]
    assert main([*args, "--guidance", "4", "--size", "64"]) in (0, None)
    generator = torch.Generator().manual_seed(3)
    expected = ref(PROMPT, guidance_scale=4.0, height=64, width=64, generator=generator).images
    assert_parity([Image.open(out).convert("RGB")], expected)


def test_lora_at_run_time_on_an_lcm_bundle(models, tmp_path):
    """A diffusers-format LoRA loaded at run time (no torch, no rebuild) gives diffusers' LCM image."""
    pytest.importorskip("peft")
    from tests.lora_files import diffusers_lora_file
    from tests.parity import PSNR_DB

    lora = diffusers_lora_file(tmp_path, models.folder("lcm"), 3, alpha=8)
    ref, pipe = models.pair("lcm", "LatentConsistencyModelPipeline")
    ref.load_lora_weights(str(lora), adapter_name="lcm")
    pipe.load_lora_weights(str(lora), adapter_name="lcm")
    latents = initial_latents((1, 4, 8, 8), seed=12)
    with injected_noise(13) as rng:
        expected = ref(PROMPT, latents=torch.from_numpy(latents), output_type="np").images
    actual = pipe(PROMPT, latents=latents, generator=rng, output_type="np").images
    assert_parity(actual, expected, PSNR_DB)


def test_served_calls_give_an_lcm_pipeline_no_empty_negative_prompt():
    """``sdrt serve`` rows carry "" as the negative prompt: an LCM pipeline (which takes none) gets none, and a
    real one still reaches it (which refuses it by name); other pipelines get theirs as before."""
    pytest.importorskip("ray")
    from sdrt.serve.batching import Call, call_arguments
    from sdrt.serve.requests import Row, Settings

    settings = Settings("m", "txt2img", 64, 64, 4, 8.5, None)
    plain = Call(settings, (Row("a cat", "", 1), Row("a dog", "", 2)), (0, 1))
    assert "negative_prompt" not in call_arguments(plain, takes_negative_prompt=False)
    assert call_arguments(plain)["negative_prompt"] == ["", ""]
    negative = Call(settings, (Row("a cat", "blue", 1),), (0,))
    assert call_arguments(negative, takes_negative_prompt=False)["negative_prompt"] == ["blue"]


def test_lora_fused_at_build_on_an_lcm_folder(models, tmp_path):
    """``build-engine --lora`` on a LatentConsistencyModelPipeline folder: diffusers' LCM image with the LoRA."""
    pytest.importorskip("peft")
    import sdrt.runtime
    from tests.lora_files import diffusers_lora_file
    from tests.parity import PSNR_DB

    lora = diffusers_lora_file(tmp_path, models.folder("lcm"), 4)
    options = [*OPTIONS, "--components", "text_encoder", "unet", "vae_decoder", "--lora", str(lora)]
    bundle = build_bundle(models.folder("lcm"), tmp_path / "bundle", options)
    ref, _ = models.pair("lcm", "LatentConsistencyModelPipeline")
    ref.load_lora_weights(str(lora))
    pipe = sdrt.runtime.LatentConsistencyModelPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    latents = initial_latents((1, 4, 8, 8), seed=14)
    with injected_noise(15) as rng:
        expected = ref(PROMPT, latents=torch.from_numpy(latents), output_type="np").images
    actual = pipe(PROMPT, latents=latents, generator=rng, output_type="np").images
    assert_parity(actual, expected, PSNR_DB)
