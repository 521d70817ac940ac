"""LoRA and embeddings by name through A1111's client (webuiapi): ``<lora:NAME:WEIGHT>`` in prompts against
diffusers' ``load_lora_weights`` + ``cross_attention_kwargs``, no LoRA bleeding between concurrent requests,
the listing routes, and the bad inputs."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess
from sdrt.cli.sdrt import main as sdrt_main
from sdrt.serve.batching import plan_calls
from sdrt.serve.loras import LoraUse
from sdrt.serve.requests import Job, Row, Settings
from tests.parity import psnr as psnr_unit

from .conftest import PASSWORD, SHIPPED_MODEL, USER

webuiapi = pytest.importorskip("webuiapi")

# Euler a: the shipped model's own scheduler, so that diffusers' pipeline on the model folder is a reference
SETTINGS = {"steps": 8, "cfg_scale": 7.5, "width": 64, "height": 64, "sampler_name": "Euler a"}


# served images are bit-equal to sdrt generate's and 86 dB from diffusers' with the same LoRA (76 dB with the
# embedding), measured on this machine
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 pictures, scaled to [0, 1] as tests.parity's psnr takes them."""
    return psnr_unit(a / 255.0, b / 255.0)


NEAR_DIFFUSERS_DB = 40.0


@pytest.fixture
def webui(server: ServerProcess):
    return webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1", username=USER, password=PASSWORD)


def _image(webui, prompt: str, seed: int) -> np.ndarray:
    result = webui.txt2img(prompt=prompt, seed=seed, **SETTINGS)
    return np.asarray(result.images[0].convert("RGB"))


def _diffusers(
    prompt: str, seed: int, lora: Path | None = None, scale: float = 1.0, embedding: Path | None = None
):
    import diffusers
    import torch

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(SHIPPED_MODEL, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    extra = {}
    if lora is not None:
        pipe.load_lora_weights(str(lora))
        extra["cross_attention_kwargs"] = {"scale": scale}
    if embedding is not None:
        pipe.load_textual_inversion(str(embedding), token=embedding.stem)
    image = pipe(
        prompt,
        num_inference_steps=SETTINGS["steps"],
        guidance_scale=SETTINGS["cfg_scale"],
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(seed),
        **extra,
    ).images[0]
    return np.asarray(image.convert("RGB"))


def _generated(bundle: Path, tmp_path: Path, prompt: str, seed: int, *extra: str) -> np.ndarray:
    """``sdrt generate``'s image (run-time LoRA in-process) for the settings above."""
    out = tmp_path / f"generate-{seed}.png"
    argv = ["generate", str(bundle), prompt, "--scheduler", "euler_a", "--steps", "8", "--guidance", "7.5"]
    argv += [
        "--seed",
        str(seed),
        "--size",
        "64x64",
        "-o",
        str(out),
        "--no-progress",
        "--prompt-syntax",
        "a1111",
    ]
    assert sdrt_main([*argv, *extra]) == 0
    return np.asarray(Image.open(out).convert("RGB"))


def test_lora_by_name_equals_generate_and_diffusers_load_lora_weights(
    webui, network_dirs, shapes_bundle: Path, tmp_path: Path
) -> None:
    loras, _ = network_dirs
    served = _image(webui, "a red circle <lora:tiny:0.8>", 3)
    lora = f"{loras / 'tiny.safetensors'}:0.8"
    np.testing.assert_array_equal(
        served, _generated(shapes_bundle, tmp_path, "a red circle", 3, "--lora", lora)
    )
    with_lora = _diffusers("a red circle", 3, loras / "tiny.safetensors", 0.8)
    without = _diffusers("a red circle", 3)
    assert psnr(served, with_lora) >= NEAR_DIFFUSERS_DB
    assert psnr(served, without) < psnr(served, with_lora) - 10, "the LoRA changed nothing measurable"
    assert np.array_equal(_image(webui, "<lora:tiny:0.8>a red circle", 3), served)  # anywhere in the prompt


def test_concurrent_requests_with_different_loras_each_equal_alone(webui) -> None:
    prompts = [
        "a blue square <lora:tiny:0.8>",
        "a blue square <lora:other:0.5>",
        "a blue square",
        "a blue square <lora:tiny:0.8> <lora:other:0.5>",
    ] * 2
    alone = [_image(webui, p, 5) for p in prompts[:4]]
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: _image(webui, p, 5), prompts))
    for i, image in enumerate(together):
        np.testing.assert_array_equal(image, alone[i % 4], err_msg=prompts[i])
    assert len({a.tobytes() for a in alone}) == 4


def test_equal_lora_sets_share_calls_and_different_ones_never_do() -> None:
    tiny, other = LoraUse("tiny", "/l/tiny.safetensors", 0.8), LoraUse("other", "/l/other.safetensors", 0.5)
    base = Settings("m", "txt2img", 64, 64, 8, 7.5, None, prompt_syntax="a1111")
    jobs = [
        Job(Settings(**{**base.__dict__, "loras": loras}), (Row("p", "", i),))
        for i, loras in enumerate([(tiny,), (other,), (tiny,), (), (tiny, other)])
    ]
    calls = plan_calls(jobs, max_rows=8)
    assert sorted(c.owners for c in calls) == [(0, 2), (1,), (3,), (4,)]


def test_embedding_by_file_name_equals_diffusers(webui, network_dirs) -> None:
    _, embeddings = network_dirs
    served = _image(webui, "a shapestyle circle", 4)
    expected = _diffusers("a shapestyle circle", 4, embedding=embeddings / "shapestyle.safetensors")
    without = _diffusers("a shapestyle circle", 4)  # the word alone, no embedding loaded
    near, far = psnr(served, expected), psnr(served, without)
    assert near >= NEAR_DIFFUSERS_DB and near > far + 8, (
        f"served image {near:.1f} dB from diffusers' with the embedding, {far:.1f} without"
    )
    assert psnr(served, _image(webui, "a circle", 4)) < 30


def test_listing_routes_in_a1111_shapes(webui, server: ServerProcess, network_dirs) -> None:
    loras, _ = network_dirs
    listed = {lora["name"]: lora for lora in webui.get_loras()}
    assert set(listed) == {"tiny", "other"}
    assert listed["tiny"]["path"] == str(loras / "tiny.safetensors") and listed["tiny"]["alias"] == "tiny"
    assert isinstance(listed["tiny"]["metadata"], dict)
    embeddings = webui.get_embeddings()
    assert (
        embeddings["loaded"]["shapestyle"]["vectors"] == 2
        and embeddings["loaded"]["shapestyle"]["shape"] == 64
    )
    assert set(embeddings["skipped"]) == {"narrow", "broken"}
    assert "wide" in embeddings["skipped"]["narrow"]["reason"]
    vaes = webui.get_sd_vae()
    assert [v["model_name"] for v in vaes] == ["sd-shapes vae"]
    auth = (USER, PASSWORD)
    shutil.copy(loras / "other.safetensors", loras / "third.safetensors")
    try:
        assert requests.post(f"{server.url}/sdapi/v1/refresh-loras", auth=auth, timeout=30).status_code == 200
        assert {lora["name"] for lora in webui.get_loras()} == {"tiny", "other", "third"}
        assert _image(webui, "a circle <lora:third:0.5>", 6).shape == (64, 64, 3)
    finally:
        (loras / "third.safetensors").unlink()
        requests.post(f"{server.url}/sdapi/v1/refresh-loras", auth=auth, timeout=30)


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("a cat <lora:nosuch:0.8>", ["nosuch", "/sdapi/v1/loras"]),
        ("a cat <lora:tiny:lots>", ["lots", "number"]),
        ("a cat <lora:tiny:nan>", ["nan", "number"]),
        ("a cat <lora:tiny:0.8:0.5>", ["<lora:NAME:WEIGHT>"]),
    ],
)
def test_bad_lora_tags_are_400_naming_them(server: ServerProcess, prompt: str, words: list[str]) -> None:
    body = {"prompt": prompt, **SETTINGS}
    answer = requests.post(f"{server.url}/sdapi/v1/txt2img", json=body, auth=(USER, PASSWORD), timeout=60)
    assert answer.status_code == 400, answer.text
    for word in words:
        assert word in answer.json()["detail"], answer.json()
