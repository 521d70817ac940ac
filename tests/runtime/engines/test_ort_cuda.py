"""The CUDA path's bookkeeping (runtime/ort_cuda.py) on NumPy, and the real thing on a GPU (cupy marker)."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.runtime.engines import providers
from sdrt.runtime.engines.base import TensorSpec
from sdrt.runtime.engines.ort.cuda import BufferCache, CudaGraphRunner, output_shapes, shape_key

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

F32 = np.dtype(np.float32)
INPUTS = {
    "sample": TensorSpec("sample", F32, ("batch", 4, "h", "w")),
    "timestep": TensorSpec("timestep", F32, ("batch",)),
}
OUTPUTS = {"noise_pred": TensorSpec("noise_pred", np.dtype(np.float16), ("batch", 4, "h", "w"))}


def _arrays(batch: int = 2, h: int = 8, w: int = 6) -> dict[str, np.ndarray]:
    return {"timestep": np.zeros(batch, np.float32), "sample": np.zeros((batch, 4, h, w), np.float32)}


def test_shape_key_is_sorted_by_name_and_holds_dtypes():
    key = shape_key(_arrays())
    assert key == (("sample", (2, 4, 8, 6), "float32"), ("timestep", (2,), "float32"))
    assert shape_key(_arrays(h=16)) != key


def test_output_shapes_follow_the_inputs_named_dims():
    assert output_shapes(INPUTS, OUTPUTS, _arrays()) == {"noise_pred": ((2, 4, 8, 6), np.dtype(np.float16))}
    unknown = {"y": TensorSpec("y", F32, ("batch", "tokens"))}
    assert output_shapes(INPUTS, unknown, _arrays()) is None


def test_buffer_cache_allocates_once_per_shape_and_keeps_the_recent_keys():
    cache = BufferCache(lambda shape, dtype: np.empty(shape, dtype), max_keys=2)
    first = _arrays()
    specs = output_shapes(INPUTS, OUTPUTS, first)
    buffers = cache.get(shape_key(first), specs)
    assert buffers["noise_pred"].shape == (2, 4, 8, 6) and buffers["noise_pred"].dtype == np.float16
    for _ in range(3):  # a denoising loop: no new allocation
        again = cache.get(shape_key(_arrays()), specs)
        assert again["noise_pred"] is buffers["noise_pred"]
    assert cache.allocations == 1
    for h in (16, 24):  # two more shapes: the first (least recently used) is dropped
        other = _arrays(h=h)
        cache.get(shape_key(other), output_shapes(INPUTS, OUTPUTS, other))
    assert len(cache) == 2 and cache.allocations == 3
    assert cache.get(shape_key(first), specs)["noise_pred"] is not buffers["noise_pred"]
    with pytest.raises(ValueError, match="max_keys"):
        BufferCache(np.empty, max_keys=0)


def test_cuda_graph_runner_fixes_buffers_for_one_shape_set():
    allocated = []

    def allocate(shape, dtype):
        allocated.append(shape)
        return np.empty(shape, dtype)

    runner = CudaGraphRunner(None, name="unet", inputs=INPUTS, outputs=OUTPUTS, allocate=allocate)
    runner.prepare(_arrays())
    buffers = dict(runner.input_buffers), dict(runner.output_buffers)
    assert sorted(allocated) == [(2,), (2, 4, 8, 6), (2, 4, 8, 6)]
    runner.prepare(_arrays())  # same shapes: same buffers (the captured graph's addresses)
    assert runner.input_buffers == buffers[0] and runner.output_buffers == buffers[1]
    assert len(allocated) == 3
    with pytest.raises(ValueError, match=r"captured for inputs sample float32\[2, 4, 8, 6\]"):
        runner.prepare(_arrays(batch=1))
    dynamic = CudaGraphRunner(
        None,
        name="text_encoder",
        inputs=INPUTS,
        outputs={"y": TensorSpec("y", F32, ("batch", None))},
        allocate=allocate,
    )
    with pytest.raises(ValueError, match="--static"):
        dynamic.prepare(_arrays())


@pytest.fixture
def add_onnx(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    path = tmp_path / "add.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_cuda_options_are_refused_on_cpu(add_onnx):
    from sdrt.runtime.engines.ort.engine import OrtEngine

    with pytest.raises(ValueError, match="options of provider 'cuda'"):
        OrtEngine(add_onnx, provider="cpu", cuda_graph=True)


@pytest.mark.cupy
def test_cuda_reused_outputs_and_cuda_graph_match_cpu(add_onnx):
    cp = pytest.importorskip("cupy")
    if not providers.provider_available("cuda"):
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    from sdrt.runtime.engines.ort.engine import OrtEngine

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    reused = OrtEngine(add_onnx, provider="cuda", reuse_outputs=True)
    first = reused(x=cp.asarray(x))["y"]
    second = reused(x=cp.asarray(x + 1))["y"]
    assert second is first  # one buffer per shape
    np.testing.assert_array_equal(cp.asnumpy(second), 2 * (x + 1))
    graph = OrtEngine(add_onnx, provider="cuda", cuda_graph=True)
    for step in range(4):  # warm-up, capture, replays: each sees its own input
        out = graph(x=cp.asarray(x + step))["y"]
        np.testing.assert_array_equal(cp.asnumpy(out), 2 * (x + step))
    with pytest.raises(ValueError):  # static shapes only
        graph(x=cp.zeros((1, 3), dtype=cp.float32))


@pytest.mark.cupy
def test_denoising_loop_has_no_host_synchronisation(tiny, tmp_path):
    """The CuPy path of a whole denoising loop (UNet on ORT CUDA, guidance, scheduler) never waits on the
    device from the host (CuPy raises on any synchronising call inside ``allow_synchronize(False)``)."""
    cp = pytest.importorskip("cupy")
    cupyx = pytest.importorskip("cupyx")
    if not providers.provider_available("cuda"):
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    from sdrt.runtime import DiffusionPipeline
    from tests.parity import build_bundle

    bundle = build_bundle(tiny.model("sd1"), tmp_path / "cuda", ["--device", "cuda", "--precision", "fp16"])
    pipe = DiffusionPipeline.from_pretrained(bundle, provider="cuda")
    pipe.set_progress_bar_config(disable=True)
    embeds, negative = pipe.encode_prompt("a photo of a cat", 1, True)
    latents = cp.asarray(np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32))
    cp.cuda.Device().synchronize()
    with cupyx.allow_synchronize(False):
        out = pipe(
            prompt_embeds=embeds,
            negative_prompt_embeds=negative,
            num_inference_steps=5,
            latents=latents,
            output_type="latent",
        ).images
    assert out.shape == (1, 4, 8, 8) and bool(cp.isfinite(out).all())
