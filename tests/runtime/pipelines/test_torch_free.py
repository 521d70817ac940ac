"""The whole text-to-image pipeline runs with torch, diffusers and transformers unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.parity import assert_parity, initial_latents
from tests.runtime.test_torch_free import BLOCKER

torch = pytest.importorskip("torch")

SCRIPT = BLOCKER + textwrap.dedent(
    """
    import numpy as np

    import sdrt.runtime
    from sdrt.runtime import StableDiffusionPipeline

    assert "onnxruntime" not in sys.modules, "import sdrt.runtime loaded onnxruntime"
    bundle, latents_file, out_file = sys.argv[1:4]
    pipe = StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    from sdrt.schedulers import DPMSolverMultistepScheduler

    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    images = pipe(
        ["a photo of a cat", "a red square"],
        negative_prompt=["blue", "circle"],
        num_inference_steps=4,
        latents=np.load(latents_file),
        output_type="np",
    ).images
    np.save(out_file, images)
    pil = pipe("a photo of a cat", num_inference_steps=2, generator=7).images[0]
    assert pil.size == (64, 64)
    from sdrt.runtime.errors import InputError

    try:
        pipe("a photo of a cat", num_inference_steps=2, output_type="pt")
    except InputError as error:
        assert "output_type='pt' needs torch" in str(error) and "output_type='np'" in str(error), error
    else:
        raise AssertionError("output_type='pt' without torch gave no error")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("OK")
    """
)


def test_text_to_image_without_torch(tiny, tmp_path):
    import diffusers

    bundle = tiny.bundle("sd1")
    latents = initial_latents((2, 4, 8, 8), seed=41)
    np.save(tmp_path / "latents.npy", latents)
    out = tmp_path / "images.npy"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(bundle), str(tmp_path / "latents.npy"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
    ref = diffusers.StableDiffusionPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    ref.scheduler = diffusers.DPMSolverMultistepScheduler.from_config(ref.scheduler.config)
    expected = ref(
        ["a photo of a cat", "a red square"],
        negative_prompt=["blue", "circle"],
        num_inference_steps=4,
        latents=torch.from_numpy(latents),
        output_type="np",
    ).images
    assert_parity(np.load(out), expected)
