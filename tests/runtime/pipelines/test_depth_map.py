"""The depth map's resize against torch's ``interpolate(mode="bicubic", align_corners=False)``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(("height", "width"), [(8, 8), (8, 6), (12, 10), (64, 48), (100, 30)])
def test_bicubic_resize_matches_torch(height, width):
    from sdrt.runtime.pipelines.depth_map import bicubic_resize

    depth = np.random.default_rng(0).standard_normal((2, 64, 48)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(depth)[:, None], size=(height, width), mode="bicubic", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(bicubic_resize(depth, height, width), expected, atol=1e-5)
