"""Shared harness: run an sdrt scheduler and its diffusers original side by side.

Both get the same initial sample, the same deterministic fake model and the same injected noise
(diffusers' ``randn_tensor`` is replaced by draws from a seeded NumPy generator, and sdrt gets an
identically seeded generator), so every ``prev_sample`` can be compared.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

SEED = 1234
SHAPE = (2, 4, 8, 8)
TOLERANCE = {np.float64: 1e-5, np.float32: 1e-4}

# Stable Diffusion 1.x's training schedule, and SDXL's scheduler config on top of it.
SD15 = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
SDXL = dict(SD15, timestep_spacing="leading", interpolation_type="linear")
# SD 1.x pipelines' own scheduler config (PNDM's, read by DDIM and the solvers too): the keys the solvers
# ignore still count in a from_config swap.
SD15_PIPELINE = dict(SD15, set_alpha_to_one=False, skip_prk_steps=True, clip_sample=False)
# DPM++ 2M, as pipelines configure DPMSolverMultistepScheduler.
DPMPP_2M = dict(SD15_PIPELINE, algorithm_type="dpmsolver++", solver_order=2)
# SD 2.1's (v-prediction) pipeline config: SD15_PIPELINE predicting v, with the default leading spacing.
SD21_V_PIPELINE = dict(SD15_PIPELINE, prediction_type="v_prediction", timestep_spacing="leading")
# The scheduler config of the LCM-distilled SD 1.5 models (e.g. LCM_Dreamshaper_v7).
LCM_SD15 = dict(
    SD15, set_alpha_to_one=True, clip_sample=False, original_inference_steps=50, timestep_scaling=10.0
)

try:  # CuPy cases exist only where CuPy and a GPU are (select them with -m cupy); elsewhere, none
    import cupy  # type: ignore[import-not-found]

    cupy.cuda.runtime.getDeviceCount()
    ARRAY_MODULES = [np, pytest.param(cupy, marks=pytest.mark.cupy)]
except Exception:  # noqa: BLE001
    ARRAY_MODULES = [np]

DTYPES = [np.float64, np.float32]
XP = pytest.mark.parametrize("xp", ARRAY_MODULES)


class SameNoise:
    """``np.random.default_rng(seed)``'s normal draws (the ones ``injected_noise`` feeds diffusers) as
    arrays of ``xp``: a CuPy generator draws other numbers, so stochastic steps would not compare."""

    def __init__(self, seed: int, xp: Any) -> None:
        self.rng = np.random.default_rng(seed)
        self.xp = xp

    def standard_normal(self, size: tuple[int, ...]) -> Any:
        return self.xp.asarray(self.rng.standard_normal(size=size))


def noise_generator(seed: int, xp: Any) -> Any:
    return np.random.default_rng(seed) if xp is np else SameNoise(seed, xp)


def fake_model(x: Any, t: float, lib: Any) -> Any:
    """A fixed, smooth function of sample and timestep standing in for a UNet."""
    return 0.6 * lib.tanh(x) + 0.4 * lib.sin(1.3 * x + t / 250.0) - 0.05 * x


def initial_sample(dtype: type = np.float64) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal(SHAPE).astype(dtype)


@contextlib.contextmanager
def injected_noise(seed: int = SEED + 1) -> Iterator[None]:
    """Make diffusers' schedulers draw their noise from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    # diffusers imports its scheduler modules lazily: import them now, or a module first used
    # inside this block would keep the real randn_tensor.
    from sdrt.schedulers import SCHEDULER_NAMES

    for name in SCHEDULER_NAMES:
        getattr(diffusers, name)

    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None, **kwargs):
        noise = torch.from_numpy(rng.standard_normal(size=tuple(shape)))
        return noise.to(dtype=dtype or torch.float32, device=device or "cpu")

    patched = []
    for name, module in list(sys.modules.items()):
        if name.startswith("diffusers.schedulers.") and hasattr(module, "randn_tensor"):
            patched.append((module, module.randn_tensor))
            module.randn_tensor = randn_tensor
    try:
        yield
    finally:
        for module, original in patched:
            module.randn_tensor = original


@contextlib.contextmanager
def correctly_rounded_sqrt() -> Iterator[None]:
    """Make torch's float32 square roots (``x ** 0.5``, ``sqrt``) correctly rounded, as NumPy's are.

    This machine's torch CPU build rounds about one float32 square root in seven to the neighbouring
    value (1 ulp off). Where diffusers' result hangs on that ulp (an ill-conditioned step), a test run
    inside this block can keep the normal tolerance: what is left is the math, not torch's rounding.
    """
    pow_, sqrt_method, sqrt_function = torch.Tensor.__pow__, torch.Tensor.sqrt, torch.sqrt

    def exact(x: Any) -> Any:
        return torch.from_numpy(np.asarray(np.sqrt(x.numpy()), dtype=np.float32)).reshape(x.shape)

    def exact_pow(self, exponent):
        if self.dtype == torch.float32 and isinstance(exponent, float) and exponent == 0.5:
            return exact(self)
        return pow_(self, exponent)

    def exact_sqrt_method(self):
        return exact(self) if self.dtype == torch.float32 else sqrt_method(self)

    def exact_sqrt_function(x, *args, **kwargs):
        if x.dtype == torch.float32 and not args and not kwargs:
            return exact(x)
        return sqrt_function(x, *args, **kwargs)

    torch.Tensor.__pow__, torch.Tensor.sqrt, torch.sqrt = exact_pow, exact_sqrt_method, exact_sqrt_function
    try:
        yield
    finally:
        torch.Tensor.__pow__, torch.Tensor.sqrt, torch.sqrt = pow_, sqrt_method, sqrt_function


def diffusers_scheduler(name: str, config: dict[str, Any]) -> Any:
    return getattr(importlib.import_module("diffusers"), name).from_config(config)


def relative_error(actual: Any, expected: Any) -> float:
    actual = np.asarray(actual.get() if hasattr(actual, "get") else actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(expected).max(), 1e-12)
    return float(np.abs(actual - expected).max() / scale)


def run_parity(
    name: str,
    config: dict[str, Any],
    num_inference_steps: int | None,
    *,
    dtype: type = np.float64,
    xp: Any = np,
    set_timesteps_kwargs: dict[str, Any] | None = None,
    step_kwargs: dict[str, Any] | None = None,
) -> int:
    """Run both loops; assert equal timesteps and ``prev_sample`` within tolerance at every step.

    Returns the number of steps compared.
    """
    from sdrt.schedulers import get_scheduler_class

    set_timesteps_kwargs = set_timesteps_kwargs or {}
    step_kwargs = step_kwargs or {}
    tol = TOLERANCE[dtype]
    # At zero terminal SNR, sigma_max = sqrt(2^24 - 1) is a float32 near-tie that torch rounds by CPU
    # (4096 on AMD Zen 4, 4095.9998 on Intel); sdrt keeps NumPy's correctly rounded value.
    exact = correctly_rounded_sqrt() if config.get("rescale_betas_zero_snr") else contextlib.nullcontext()
    with injected_noise(), exact:
        ref = diffusers_scheduler(name, config)
        ours = get_scheduler_class(name).from_config(config)
        ref.set_timesteps(num_inference_steps, **set_timesteps_kwargs)
        ours.set_timesteps(num_inference_steps, **set_timesteps_kwargs)
        ref_t = ref.timesteps.numpy()
        np.testing.assert_allclose(
            np.asarray(ours.timesteps, dtype=np.float64), ref_t.astype(np.float64), rtol=1e-6, atol=1e-4
        )
        assert float(ours.init_noise_sigma) == pytest.approx(float(ref.init_noise_sigma), rel=1e-6)

        x_ref = torch.from_numpy(initial_sample(dtype)) * ref.init_noise_sigma
        x_ours = xp.asarray(initial_sample(dtype)) * ours.init_noise_sigma
        generator = noise_generator(SEED + 1, xp)
        torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
        x_ref = x_ref.to(torch_dtype)
        x_ours = x_ours.astype(dtype)
        for i, (t_ref, t_ours) in enumerate(zip(ref.timesteps, ours.timesteps)):
            m_ref = fake_model(ref.scale_model_input(x_ref, t_ref), float(t_ref), torch)
            m_ours = fake_model(ours.scale_model_input(x_ours, t_ours), float(t_ours), xp)
            assert m_ours.dtype == dtype, f"step {i}: model input dtype changed to {m_ours.dtype}"
            x_ref = ref.step(m_ref, t_ref, x_ref, **step_kwargs).prev_sample
            x_ours = ours.step(m_ours, t_ours, x_ours, generator=generator, **step_kwargs).prev_sample
            assert x_ours.dtype == dtype, f"step {i}: prev_sample dtype {x_ours.dtype}, expected {dtype}"
            err = relative_error(x_ours, x_ref.numpy())
            assert err <= tol, f"{name} step {i} (t={float(t_ref)}): relative error {err:.3g} > {tol}"
        return len(ref.timesteps)
