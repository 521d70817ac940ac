"""sdrt's CLIP image processor against transformers' (its PIL backend, what loads without torchvision)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

transformers = pytest.importorskip("transformers")


def transformers_processor(**settings):
    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**settings)


def picture(height: int, width: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize(
    "settings",
    [
        dict(),
        dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        dict(size={"height": 40, "width": 48}, do_center_crop=False, resample=2),
        dict(size={"shortest_edge": 30}, crop_size={"height": 24, "width": 28}, image_mean=[0.5] * 3),
        dict(do_resize=False, crop_size={"height": 80, "width": 80}, do_normalize=False),
    ],
)
def test_the_processor_matches_transformers(settings):
    from sdrt.runtime.clip_processor import CLIPImageProcessor

    reference = transformers_processor(**settings)
    ours = CLIPImageProcessor(**reference.to_dict())
    for height, width in ((64, 48), (100, 160), (37, 37)):
        image = picture(height, width)
        expected = reference(images=[image], return_tensors="np").pixel_values
        actual = ours([image])
        assert actual.shape == expected.shape, (settings, height, width)
        np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_arrays_in_unit_range_read_as_their_8_bit_picture():
    from sdrt.runtime.clip_processor import CLIPImageProcessor

    image = picture(50, 70, seed=3)
    array = np.asarray(image).astype(np.float32) / 255
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    np.testing.assert_array_equal(processor(array), processor(image))
    np.testing.assert_array_equal(processor(array.transpose(2, 0, 1)[None]), processor([image]))


def test_a_wrong_image_is_named():
    from sdrt.runtime.clip_processor import CLIPImageProcessor
    from sdrt.runtime.errors import InputError

    with pytest.raises(InputError, match="PIL image"):
        CLIPImageProcessor()(np.zeros((4, 5)))
