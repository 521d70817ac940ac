"""TorchCompatibleGenerator draws what torch.Generator("cpu").manual_seed(seed) + torch.randn draw."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from sdrt.runtime.random.torch_generator import TorchCompatibleGenerator, mt19937_state

torch = pytest.importorskip("torch")

SEEDS = [0, 1, 42, 1234, 2**32 - 1, 2**32 + 5, 2**63 - 1, 2**64 - 1, -1, 987654321]
SHAPES = [(1,), (3,), (15,), (16,), (17,), (31,), (100,), (1, 4, 64, 64), (2, 4, 8, 8), (3, 5), (0,)]
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _torch_randn(seed: int, shape: tuple[int, ...], dtype=torch.float32) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype).numpy()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float32_equals_torch(seed, shape):
    expected = _torch_randn(seed, shape)
    got = TorchCompatibleGenerator(seed, kernel="avx2" if X86 else "scalar").randn(shape)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    if X86:  # torch's AVX2 Box-Muller is replayed bit for bit
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", [0, 42, 2**63 - 1])
@pytest.mark.parametrize("shape", [(3,), (16,), (17,), (1, 4, 16, 16)], ids=str)
def test_float64_equals_torch(seed, shape):
    expected = _torch_randn(seed, shape, torch.float64)
    got = TorchCompatibleGenerator(seed).randn(shape, dtype=np.float64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_large_latents_bit_exact_on_x86():
    expected = _torch_randn(1234, (2, 4, 128, 128))
    got = TorchCompatibleGenerator(1234).randn((2, 4, 128, 128))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    if X86:
        assert np.count_nonzero(got != expected) == 0


def test_consecutive_draws_continue_the_stream():
    """Mixed sizes: the <16 path keeps a cached normal in the generator across calls, as torch does."""
    shapes = [(3,), (20,), (1,), (5,), (16,), (2,), (33,), (1,), (1, 4, 8, 8), (7,)]
    generator = torch.Generator("cpu").manual_seed(7)
    ours = TorchCompatibleGenerator(7)
    for shape in shapes:
        expected = torch.randn(shape, generator=generator).numpy()
        np.testing.assert_allclose(ours.randn(shape), expected, rtol=0, atol=1e-6)


def test_manual_seed_restarts_and_forgets_the_cached_normal():
    ours = TorchCompatibleGenerator(5)
    first = ours.randn(3)
    ours.randn(1)
    assert ours.manual_seed(5) is ours
    np.testing.assert_array_equal(ours.randn(3), first)
    assert ours.initial_seed() == 5


def test_standard_normal_is_the_same_draw():
    shape = (2, 4, 8, 8)
    np.testing.assert_array_equal(
        TorchCompatibleGenerator(3).standard_normal(shape), TorchCompatibleGenerator(3).randn(shape)
    )
    np.testing.assert_array_equal(
        TorchCompatibleGenerator(3).standard_normal(size=[16]), TorchCompatibleGenerator(3).randn(16)
    )
    assert isinstance(TorchCompatibleGenerator(3).standard_normal(), float)
    assert TorchCompatibleGenerator(3).randn(2, 3).shape == (2, 3)


def test_mt19937_state_is_the_reference_init_genrand():
    """NumPy's legacy seeding is the reference init_genrand: the same state for 32-bit seeds."""
    for seed in (0, 1, 5489, 2**32 - 1):
        legacy = np.random.RandomState(seed).get_state()[1]
        np.testing.assert_array_equal(mt19937_state(seed), legacy)


def test_scalar_kernel_is_close_to_torch():
    """The libm Box-Muller (torch on non-x86 CPUs) stays within a few float32 ulps of torch's draw here."""
    expected = _torch_randn(42, (1, 4, 32, 32))
    got = TorchCompatibleGenerator(42, kernel="scalar").randn((1, 4, 32, 32))
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        TorchCompatibleGenerator(2**64)
    with pytest.raises(TypeError, match="float32 or float64"):
        TorchCompatibleGenerator(0).randn(4, dtype=np.float16)
    with pytest.raises(ValueError, match="kernel"):
        TorchCompatibleGenerator(0, kernel="sse")
