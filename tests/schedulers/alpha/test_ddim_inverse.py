"""DDIMInverseScheduler (DiffEdit's inversion) against diffusers step for step: both spacings, the three
prediction types, clipping, and the first step's alpha-bar with and without ``set_alpha_to_one``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedulers import parity
from tests.schedulers.parity import DTYPES, SD15_PIPELINE, XP

NAME = "DDIMInverseScheduler"
# diffusers' DiffEdit makes it from the pipeline's config, with SD 1.x's set_alpha_to_one=False
CONFIGS = {
    "sd15": SD15_PIPELINE,
    "sd15-alpha-one": dict(SD15_PIPELINE, set_alpha_to_one=True),
    "sd15-trailing-v": dict(SD15_PIPELINE, timestep_spacing="trailing", prediction_type="v_prediction"),
    "cosine-sample-clipped": dict(
        beta_schedule="squaredcos_cap_v2",
        prediction_type="sample",
        clip_sample=True,
        clip_sample_range=0.5,
        set_alpha_to_one=False,
    ),
}


@XP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_diffusers(xp, dtype, config):
    assert parity.run_parity(NAME, config, 10, dtype=dtype, xp=xp) == 10


@XP
def test_many_steps(xp):
    assert parity.run_parity(NAME, SD15_PIPELINE, 250, dtype=np.float64, xp=xp) == 250


def test_refuses_linspace_spacing():
    from sdrt.schedulers import get_scheduler_class

    with pytest.raises(NotImplementedError, match="timestep_spacing"):
        get_scheduler_class(NAME)(timestep_spacing="linspace")
