"""A1111's sampler names give the schedulers diffusers' docs map them to: same class, same schedule."""

import numpy as np
import pytest

from sdrt.serve.fields import RequestError
from sdrt.serve.samplers import SAMPLERS, make_scheduler, sampler_settings

diffusers = pytest.importorskip("diffusers")

SD_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}
# diffusers' documentation, "Schedulers" overview: A1111 / k-diffusion name -> class and init arguments.
DOCUMENTED = {
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "DPM++ 2M SDE Karras": (
        "DPMSolverMultistepScheduler",
        {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"},
    ),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 Karras": ("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM2 a Karras": ("KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_sampler_is_diffusers_documented_scheduler(name: str) -> None:
    cls_name, kwargs = DOCUMENTED[name]
    expected = getattr(diffusers, cls_name).from_config(SD_CONFIG, **kwargs)
    sampler, karras = sampler_settings(name, None)
    ours = make_scheduler(sampler, karras, SD_CONFIG)
    assert type(ours).__name__ == cls_name
    expected.set_timesteps(20)
    ours.set_timesteps(20)
    np.testing.assert_allclose(
        np.asarray(ours.timesteps, dtype=np.float64),
        expected.timesteps.double().numpy(),
        rtol=1e-5,
        atol=1e-4,
    )
    if hasattr(expected, "sigmas"):
        np.testing.assert_allclose(np.asarray(ours.sigmas), expected.sigmas.numpy(), rtol=1e-5)


def test_schedule_field_and_aliases() -> None:
    assert sampler_settings("DPM++ 2M", "Karras") == ("DPM++ 2M", True)
    assert sampler_settings("k_euler_a", "automatic") == ("Euler a", False)
    assert sampler_settings(None, None) == (None, False)
    assert {s.name for s in SAMPLERS} == {n for n in DOCUMENTED if not n.endswith("Karras")}


@pytest.mark.parametrize(
    ("sampler", "schedule", "field"),
    [
        ("DPM++ SDE", None, "sampler_name"),
        ("Euler a Karras", None, "sampler_name"),
        ("Euler", "Uniform", "scheduler"),
    ],
)
def test_unserved_sampler_names_its_field(sampler: str, schedule: str | None, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        sampler_settings(sampler, schedule)
    assert caught.value.field == field
