"""Where sdrt's UNet graph takes each T2I-Adapter feature (``intrablock_levels``) against diffusers' UNet itself, on
an SDXL-shaped UNet (a plain first block, the fourth feature added after the mid block) with an XL adapter, and on
an SD-shaped one with a full adapter: the shapes agree, and diffusers uses every feature there; a light adapter's
last feature fits no block of that UNet, and diffusers drops it (sdrt refuses such an adapter at build)."""

from __future__ import annotations

import pytest

from sdrt.runtime.components.adapter import feature_levels, intrablock_levels

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

SDXL_BLOCKS = ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
SD_BLOCKS = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")


def _unet(blocks):
    torch.manual_seed(0)
    up = tuple("UpBlock2D" if b == "DownBlock2D" else "CrossAttnUpBlock2D" for b in reversed(blocks))
    return diffusers.UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        down_block_types=blocks,
        up_block_types=up,
        cross_attention_dim=8,
        attention_head_dim=4,
        norm_num_groups=8,
    ).eval()


@pytest.mark.parametrize(
    ("blocks", "adapter"),
    [
        (SDXL_BLOCKS, dict(channels=[16, 32, 64, 64], downscale_factor=16, adapter_type="full_adapter_xl")),
        (SD_BLOCKS, dict(channels=[16, 32, 64], downscale_factor=8, adapter_type="full_adapter")),
        (SD_BLOCKS, dict(channels=[16, 32, 64], downscale_factor=8, adapter_type="light_adapter")),
    ],
)
def test_feature_levels_are_where_diffusers_adds_them(blocks, adapter):
    unet = _unet(blocks)
    t2i = diffusers.T2IAdapter(in_channels=3, num_res_blocks=1, **adapter).eval()
    latent = 8
    with torch.no_grad():
        features = t2i(torch.rand(1, 3, 8 * latent, 8 * latent))
    levels = feature_levels(t2i.config, 8)
    slots = intrablock_levels(unet.config)
    fitting = [lv == slot for lv, slot in zip(levels, slots)]
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, latent // 2**lv, latent // 2**lv) for c, lv in levels
    ]
    sample, hidden = torch.randn(1, 4, latent, latent), torch.randn(1, 77, 8)

    def run(residuals):
        with torch.no_grad():
            return unet(sample, 10, hidden, down_intrablock_additional_residuals=residuals).sample

    base = run([f.clone() for f in features])
    if all(fitting) and len(levels) <= len(slots):
        for i in range(len(features)):  # each feature is used where sdrt's graph puts it
            changed = [f.clone() for f in features]
            changed[i] += 1.0
            assert not torch.allclose(run(changed), base), f"diffusers ignored feature {i}"
    else:  # sdrt refuses it at build: here the last feature misses the mid block, which diffusers silently drops
        j = fitting.index(False)
        assert j == len(slots) - 1
        changed = [f.clone() for f in features]
        changed[j] += 1.0
        assert torch.equal(run(changed), base)
