"""EulerAncestralDiscreteScheduler's own cases against diffusers (its shared grids are in
test_sigma_schedulers.py): zero terminal SNR with linspace spacing, whose first step is ill-conditioned in
float32."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity
from tests.schedulers.parity import DTYPES, SD15

NAME = "EulerAncestralDiscreteScheduler"
ZERO_SNR_LINSPACE = dict(
    SD15, rescale_betas_zero_snr=True, timestep_spacing="linspace", prediction_type="v_prediction"
)
# The first of 3 steps goes from sigma_from = 4096 to sigma_to = 1.77, with the step's sigmas in float32 as
# diffusers computes them: sigma_down = sqrt(sigma_to^2 - sigma_up^2) subtracts two numbers near 3.14 (float32
# ulp 2.4e-7) that differ by sigma_to^4 / sigma_from^2 = 5.9e-7, about 2.5 ulps. One ulp of torch's float32 sqrt
# in sigma_up (1.8 ulps of sigma_up^2) moves sigma_down = 7.7e-4 by up to ~4e-4, and the sample by that times
# dx/dsigma, whose size is the sample's: ~4e-4 relative. Float32 samples add their own rounding: the step cancels
# sigma_from * x_T (ulp 1e-3 near 8192) down to O(1). Measured: 1.8e-4 (float64), 3.3e-4 (float32).
ZERO_SNR_TOLERANCE = 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_snr_linspace_ill_conditioned(dtype, monkeypatch):
    monkeypatch.setitem(parity.TOLERANCE, dtype, ZERO_SNR_TOLERANCE)
    assert parity.run_parity(NAME, ZERO_SNR_LINSPACE, 3, dtype=dtype) == 3


def test_zero_snr_linspace_same_math():
    """With torch's square roots correctly rounded, the float64 loops agree to the normal tolerance
    (run_parity makes them exact at zero terminal SNR anyway; this keeps the case explicit)."""
    with parity.correctly_rounded_sqrt():
        assert parity.run_parity(NAME, ZERO_SNR_LINSPACE, 3, dtype=np.float64) == 3
