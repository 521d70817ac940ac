"""``sdrt serve`` of an InstructPix2Pix bundle: A1111's ``/sdapi/v1/img2img`` with ``image_cfg_scale`` (as
A1111 serves InstructPix2Pix models) gives ``sdrt generate --image-guidance``'s image, bit for bit (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.serve_load import ServerProcess
from sdrt.cli.sdrt import main as sdrt_main

webuiapi = pytest.importorskip("webuiapi")
pytest.importorskip("diffusers")

PROMPT = "turn it into a red cat"
SETTINGS = {"steps": 4, "cfg_scale": 7.5, "width": 64, "height": 64, "sampler_name": "Euler a"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sdrt.cli.build_engine import main as build_engine
    from tests.runtime.pipelines.test_instruct_pix2pix import OPTIONS, make_instruct_pix2pix

    root = tmp_path_factory.mktemp("serve_instruct_pix2pix")
    folder = make_instruct_pix2pix(root / "model")
    out = root / "ip2p"
    argv = [str(folder), "-o", str(out), "--backend", "ort", "--precision", "fp32", "-q", *OPTIONS]
    assert build_engine(argv) in (0, None)
    return out


@pytest.fixture(scope="module")
def webui(bundle: Path):
    server = ServerProcess([str(bundle)])
    try:
        yield webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1")
    finally:
        server.stop()


# suite time (30 s: a server of its own); the InstructPix2Pix pipeline is compared with diffusers in the default run
@pytest.mark.slow
def test_img2img_with_image_cfg_scale_equals_sdrt_generate(webui, bundle: Path, tmp_path: Path) -> None:
    pixels = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    image, path, out = Image.fromarray(pixels), tmp_path / "init.png", tmp_path / "edited.png"
    image.save(path)
    result = webui.img2img(images=[image], prompt=PROMPT, seed=3, image_cfg_scale=1.5, **SETTINGS)
    argv = ["generate", str(bundle), PROMPT, "--image", str(path), "--image-guidance", "1.5", "--steps", "4"]
    argv += ["--scheduler", "euler_a", "--guidance", "7.5", "--seed", "3", "-o", str(out), "--no-progress"]
    assert sdrt_main(argv) == 0
    served = np.asarray(result.images[0].convert("RGB"))
    np.testing.assert_array_equal(served, np.asarray(Image.open(out).convert("RGB")))
    assert result.info["image_cfg_scale"] == 1.5 and result.info["denoising_strength"] is None

    other = webui.img2img(images=[image], prompt=PROMPT, seed=3, image_cfg_scale=3.0, **SETTINGS)
    assert not np.array_equal(np.asarray(other.images[0].convert("RGB")), served)
    assert {m["model_name"] for m in webui.get_sd_models()} == {"ip2p"}
