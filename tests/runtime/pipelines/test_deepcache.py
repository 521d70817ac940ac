"""Step caching (DeepCache): ``build-engine --deepcache`` and the pipelines' ``cache_interval``.

Interval 1 is the plain bundle's image bit for bit; interval 3 matches DeepCache's own ``DeepCacheSDHelper``
(the ``DeepCache`` package) on diffusers' pipeline of the same folder; bad settings are clear errors.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.parity import BUILD_OPTIONS, PSNR_DB, build_bundle, psnr

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
STEPS = 9
SIZE = 64


@pytest.fixture(scope="module")
def deepcache_bundle(tiny: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deepcache") / "bundle"
    return build_bundle(tiny.model("sd1"), out, [*BUILD_OPTIONS["sd1"], "--deepcache"])


def _pipe(bundle: Path, class_name: str = "StableDiffusionPipeline", provider: str = "cpu") -> Any:
    import sdrt.runtime
    from sdrt.schedulers import DDIMScheduler

    pipe = getattr(sdrt.runtime, class_name).from_pretrained(bundle, provider=provider)
    pipe.scheduler = DDIMScheduler.from_config(
        dict(pipe.scheduler.config)
    )  # unique timesteps, as DeepCache counts
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe: Any, **kwargs: Any) -> np.ndarray:
    return pipe(
        "a red cube",
        num_inference_steps=STEPS,
        generator=0,
        height=SIZE,
        width=SIZE,
        output_type="np",
        **kwargs,
    ).images


def test_manifest_records_the_branch(deepcache_bundle: Path) -> None:
    from sdrt.runtime.bundle.bundle import open_bundle

    bundle = open_bundle(deepcache_bundle)
    assert bundle.manifest.unet.deepcache_branch == 0
    shallow = bundle.record("unet_deepcache_shallow")
    assert (
        "cached_feature" in shallow.inputs
        and "cached_feature" in bundle.record("unet_deepcache_full").outputs
    )


def test_interval_one_is_the_plain_bundle_bit_for_bit(tiny: Any, deepcache_bundle: Path) -> None:
    plain = _generate(_pipe(tiny.bundle("sd1")))
    assert np.array_equal(_generate(_pipe(deepcache_bundle), cache_interval=1), plain)
    assert np.array_equal(_generate(_pipe(deepcache_bundle)), plain)


@pytest.mark.parametrize("interval", [2, 3])
def test_interval_matches_deepcache_helper(tiny: Any, deepcache_bundle: Path, interval: int) -> None:
    """Against DeepCache's own helper on diffusers' pipeline, with classifier-free guidance (batch 2)."""
    pytest.importorskip("DeepCache")
    import diffusers
    import torch
    from DeepCache import DeepCacheSDHelper

    reference = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    reference.scheduler = diffusers.DDIMScheduler.from_config(reference.scheduler.config)
    reference.set_progress_bar_config(disable=True)
    helper = DeepCacheSDHelper(pipe=reference)
    helper.set_params(cache_interval=interval, cache_branch_id=0)
    helper.enable()
    expected = reference(
        "a red cube",
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(0),
        height=SIZE,
        width=SIZE,
        output_type="np",
    ).images
    helper.disable()
    actual = _generate(_pipe(deepcache_bundle), cache_interval=interval)
    assert psnr(actual, expected) >= PSNR_DB
    assert psnr(actual, _generate(_pipe(deepcache_bundle))) < PSNR_DB  # the caching did change the image


def test_img2img_interval_matches_deepcache_helper(tiny: Any, deepcache_bundle: Path) -> None:
    pytest.importorskip("DeepCache")
    import diffusers
    import torch
    from DeepCache import DeepCacheSDHelper

    image = np.random.default_rng(3).random((SIZE, SIZE, 3)).astype(np.float32)[None]
    reference = diffusers.StableDiffusionImg2ImgPipeline.from_pretrained(tiny.model("sd1"))
    reference.scheduler = diffusers.DDIMScheduler.from_config(reference.scheduler.config)
    reference.set_progress_bar_config(disable=True)
    helper = DeepCacheSDHelper(pipe=reference)
    helper.set_params(cache_interval=3, cache_branch_id=0)
    helper.enable()
    arguments: dict[str, Any] = {"num_inference_steps": 12, "strength": 0.75, "output_type": "np"}
    expected = reference("a red cube", image, generator=torch.Generator().manual_seed(0), **arguments).images
    helper.disable()
    pipe = _pipe(deepcache_bundle, "StableDiffusionImg2ImgPipeline")
    actual = pipe("a red cube", image, generator=0, cache_interval=3, **arguments).images
    assert psnr(actual, expected) >= PSNR_DB


def test_openvino_runs_the_deepcache_bundle(deepcache_bundle: Path, tmp_path: Path) -> None:
    """The DeepCache engines as OpenVINO IR (fp32): the image ONNX Runtime gives."""
    pytest.importorskip("openvino")
    from sdrt.export.engines import build_engines

    bundle = tmp_path / "openvino"
    shutil.copytree(deepcache_bundle, bundle)
    build_engines(bundle, backend="openvino", precision="fp32")
    expected = _generate(_pipe(deepcache_bundle), cache_interval=3)
    assert psnr(_generate(_pipe(bundle, provider="openvino"), cache_interval=3), expected) >= PSNR_DB


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"cache_interval": 0}, "InputError", "at least 1"),
        ({"cache_interval": 1.5}, "InputTypeError", "must be an int"),
        ({"cache_interval": 2, "cache_branch": 1}, "InputError", "built for branch 0"),
    ],
)
def test_bad_settings(deepcache_bundle: Path, arguments: dict, error: str, words: str) -> None:
    import sdrt.runtime.errors as errors

    with pytest.raises(getattr(errors, error), match=words):
        _generate(_pipe(deepcache_bundle), **arguments)


def test_plain_bundle_names_the_rebuild(tiny: Any) -> None:
    from sdrt.runtime.errors import BundleError

    with pytest.raises(BundleError, match="build-engine MODEL -o BUNDLE --deepcache"):
        _generate(_pipe(tiny.bundle("sd1")), cache_interval=3)


def test_build_refuses_controlnet_and_unknown_branches(
    model_folders: Any, tmp_path: Path, capsys: Any
) -> None:
    from sdrt.cli.build_engine import main as build_engine
    from tests.models import make_controlnet

    model = model_folders("sd1")
    controlnet = make_controlnet(model, tmp_path / "controlnet")
    for extra, words in (
        (["--controlnet", str(controlnet), "--deepcache"], "--deepcache with --controlnet"),
        (["--deepcache", "2"], "--deepcache 2: this UNet has branches 0, 1, 3, 4"),
    ):
        out = tmp_path / "bundle"
        assert build_engine([str(model), "-o", str(out), "-q", *extra]) == 2
        assert words in capsys.readouterr().err
        assert not out.exists()


def test_sdrt_generate_cache_interval(deepcache_bundle: Path, tmp_path: Path, capsys: Any) -> None:
    from sdrt.cli.sdrt import main

    out = tmp_path / "cat.png"
    common = ["generate", str(deepcache_bundle), "a cat", "--steps", "4", "--size", "64x64", "--no-progress"]
    assert main([*common, "--cache-interval", "2", "-o", str(out)]) == 0
    assert out.exists()
    assert main([*common, "--cache-interval", "0", "-o", str(tmp_path / "no.png")]) == 2
    assert "`cache_interval` must be at least 1" in capsys.readouterr().err


@pytest.mark.slow  # its own SDXL build with --deepcache; the SD 1.x tests cover the loop
def test_sdxl_interval_matches_deepcache_helper(tiny: Any, tmp_path: Path) -> None:
    """SDXL (added time conditions, two text encoders) against DeepCache's helper on diffusers' SDXL pipeline."""
    pytest.importorskip("DeepCache")
    import diffusers
    import torch
    from DeepCache import DeepCacheSDHelper

    import sdrt.runtime

    options = [*BUILD_OPTIONS["sdxl"], "--deepcache"]
    bundle = build_bundle(tiny.model("sdxl"), tmp_path / "sdxl", options)
    reference = diffusers.StableDiffusionXLPipeline.from_pretrained(tiny.model("sdxl"))
    reference.set_progress_bar_config(disable=True)
    helper = DeepCacheSDHelper(pipe=reference)
    helper.set_params(cache_interval=3, cache_branch_id=0)
    helper.enable()
    arguments: dict[str, Any] = {
        "num_inference_steps": STEPS,
        "height": SIZE,
        "width": SIZE,
        "output_type": "np",
    }
    expected = reference("a red cube", generator=torch.Generator().manual_seed(0), **arguments).images
    helper.disable()
    pipe = sdrt.runtime.StableDiffusionXLPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    assert psnr(pipe("a red cube", generator=0, cache_interval=3, **arguments).images, expected) >= PSNR_DB
