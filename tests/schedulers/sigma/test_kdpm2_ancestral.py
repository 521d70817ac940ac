"""KDPM2AncestralDiscreteScheduler's own cases against diffusers (its shared grids are in
test_sigma_schedulers.py): ancestral sigmas too ill-conditioned for torch's float32 sqrt."""

from __future__ import annotations

import pytest

from tests.schedulers import parity
from tests.schedulers.parity import DTYPES, SD15

NAME = "KDPM2AncestralDiscreteScheduler"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "config, steps",
    [
        (dict(SD15, timestep_spacing="linspace"), 2),
        (dict(SD15, timestep_spacing="linspace"), 3),
        (dict(SD15, timestep_spacing="linspace", use_karras_sigmas=True), 4),
        (dict(beta_schedule="linear"), 3),
        (dict(beta_schedule="squaredcos_cap_v2"), 25),
    ],
    ids=["linspace-2", "linspace-3", "linspace-karras-4", "linear-3", "cosine-25"],
)
def test_ill_conditioned_ancestral_sigmas(config, steps, dtype):
    """sigma_down = sqrt(sigma_next^2 - sigma_up^2) loses most digits in float32 when sigma_next << sigma, so
    one ulp of torch's float32 sqrt (not correctly rounded in this torch build) moves diffusers' midpoint
    timesteps (by 4e-4 to 1.2) and prev_sample (up to 3e-2 relative, cosine-25). With torch's square roots
    correctly rounded, both loops agree to the normal tolerance: measured at most 8.5e-8 in float64 and
    8.7e-6 in float32, the timesteps to 6.1e-5."""
    with parity.correctly_rounded_sqrt():
        assert parity.run_parity(NAME, config, steps, dtype=dtype) == 2 * steps - 1
