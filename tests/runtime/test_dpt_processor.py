"""sdrt's DPT image processor against transformers' (its PIL backend, what loads without torchvision)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

transformers = pytest.importorskip("transformers")


def transformers_processor(**settings):
    """transformers' DPT processor, its PIL backend (what loads where torchvision is missing)."""
    cls = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**settings)


def picture(height: int, width: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize(
    "settings",
    [
        dict(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3),
        dict(size={"height": 384, "width": 384}, keep_aspect_ratio=True, ensure_multiple_of=32),
        dict(size={"height": 48, "width": 40}, ensure_multiple_of=16, resample=2),
        dict(size={"height": 37, "width": 37}, do_pad=True, size_divisor=16),
        dict(do_resize=False, do_normalize=False),
    ],
)
def test_the_processor_matches_transformers(settings):
    from sdrt.runtime.dpt_processor import DPTImageProcessor

    reference = transformers_processor(**settings)
    ours = DPTImageProcessor(**reference.to_dict())
    for height, width in ((64, 48), (100, 160), (37, 37)):
        image = picture(height, width)
        expected = reference(images=[image], return_tensors="np").pixel_values
        actual = ours([image])
        assert actual.shape == expected.shape, (settings, height, width)
        np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_the_processor_reads_older_int_sizes():
    from sdrt.runtime.dpt_processor import DPTImageProcessor

    assert DPTImageProcessor(size=384).size == (384, 384)
    assert DPTImageProcessor(size=384, keep_aspect_ratio=True, ensure_multiple_of=32).output_size(
        480, 640
    ) == (
        384,
        512,
    )
