"""StableDiffusionLDM3DPipeline against diffusers' on a tiny LDM3D folder (a VAE of 4 channels: RGB + depth),
ORT CPU, fp32: the RGB pictures and the depth maps, as arrays and as PIL images."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity import PSNR_DB, assert_parity, initial_latents

torch = pytest.importorskip("torch")

PROMPT = "a photo of a red cat"


@pytest.mark.parametrize("scheduler", ["DDIMScheduler", "EulerDiscreteScheduler"])
def test_rgb_and_depth_match_diffusers(tiny, scheduler):
    import diffusers

    from sdrt.schedulers import get_scheduler_class

    ref = tiny.reference("ldm3d", "StableDiffusionLDM3DPipeline")
    pipe = tiny.pipeline("ldm3d", "StableDiffusionLDM3DPipeline")
    ref.scheduler = getattr(diffusers, scheduler).from_config(ref.scheduler.config)
    pipe.scheduler = get_scheduler_class(scheduler).from_config(pipe.scheduler.config)
    latents = initial_latents((1, 4, 8, 8))
    kwargs = dict(height=64, width=64, num_inference_steps=3, output_type="np")
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs)
    actual = pipe(PROMPT, latents=latents, **kwargs)
    assert actual.rgb.shape == (1, 64, 64, 3) and actual.depth.shape == (1, 64, 64, 1)
    assert_parity(actual.rgb, expected.rgb)
    assert_parity(actual.depth, expected.depth)
    if (
        scheduler == "DDIMScheduler"
    ):  # PIL: diffusers' own numpy_to_depth fails on this Pillow ((H, W, 1) as I;16)
        (rgb, depth), _ = pipe(PROMPT, latents=latents, return_dict=False, **{**kwargs, "output_type": "pil"})
        assert depth[0].mode == "I;16" and rgb[0].mode == "RGB"
        assert_parity(rgb, expected.rgb, PSNR_DB)  # 8-bit pictures against diffusers' floats
        assert _depth_close(depth[0], expected.depth[0])


def _depth_close(image, expected) -> bool:
    """A 16-bit depth PNG against diffusers' depth array (its numpy_to_depth: x * 65535 as uint16), within 0.1%."""
    reference = (expected[:, :, 0] * 65535.0).astype(np.uint16).astype(np.float64)
    return bool(np.abs(np.asarray(image, np.float64) - reference).max() <= 65535 * 1e-3)


def test_ldm3d_bundle_loads_its_pipeline(tiny):
    from sdrt.runtime import DiffusionPipeline, StableDiffusionPipeline
    from sdrt.runtime.errors import BundleError

    bundle = tiny.bundle("ldm3d")
    assert (
        type(DiffusionPipeline.from_pretrained(bundle, provider="cpu")).__name__
        == "StableDiffusionLDM3DPipeline"
    )
    with pytest.raises(BundleError, match="ldm3d"):
        StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")


def test_generate_writes_the_picture_and_its_depth_map(tiny, tmp_path, capsys):
    import diffusers
    from PIL import Image

    from sdrt.cli.sdrt import main

    bundle = tiny.bundle("ldm3d")
    capsys.readouterr()
    flags = ["--steps", "2", "--seed", "5", "--size", "64x64", "--provider", "cpu", "--no-progress"]
    assert main(["generate", str(bundle), PROMPT, *flags, "-o", str(tmp_path / "cat.png")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "cat.png"), str(tmp_path / "cat-depth.png")]
    ref = tiny.reference("ldm3d", "StableDiffusionLDM3DPipeline")
    ref.scheduler = diffusers.PNDMScheduler.from_config(ref.scheduler.config)  # the bundle's
    generator = torch.Generator("cpu").manual_seed(5)
    expected = ref(PROMPT, height=64, width=64, num_inference_steps=2, generator=generator, output_type="np")
    assert_parity([Image.open(tmp_path / "cat.png")], expected.rgb, PSNR_DB)  # 8 bits against floats
    assert _depth_close(Image.open(tmp_path / "cat-depth.png"), expected.depth[0])
