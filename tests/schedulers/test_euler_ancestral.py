"""EulerAncestralDiscreteScheduler's own case against diffusers (its shared grids are in
test_sigma_schedulers.py): zero terminal SNR with linspace spacing, ill-conditioned in float32."""

from __future__ import annotations

import pytest

from tests.schedulers import parity
from tests.schedulers.parity import SD15

NAME = "EulerAncestralDiscreteScheduler"


@pytest.mark.xfail(
    reason="zero terminal SNR with linspace spacing: sigma_down = sqrt(sigma_to^2 - sigma_up^2) loses most "
    "digits in float32 at sigma_from = 4096, so one ulp of torch's float32 sqrt changes diffusers' result "
    "(measured 1.4e-4 relative at 3 steps)",
    strict=False,
)
def test_zero_snr_linspace_ill_conditioned():
    config = dict(
        SD15, rescale_betas_zero_snr=True, timestep_spacing="linspace", prediction_type="v_prediction"
    )
    parity.run_parity(NAME, config, 3)
