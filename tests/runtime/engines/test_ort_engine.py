"""OrtEngine on CPU against NumPy/torch math, its input checks, and provider selection."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sdrt.runtime.engines import providers
from sdrt.runtime.engines.base import Engine
from sdrt.runtime.engines.ort.engine import OrtEngine
from sdrt.runtime.engines.providers import ProviderNotAvailableError, select_provider

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)
TABLE = RNG.standard_normal((50, 8)).astype(np.float32)


def _save(graph, path, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def linear_onnx(tmp_path):
    """x float32 [batch, 4] -> y = x W + b, relu = max(y, 0)."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["y"]),
        helper.make_node("Relu", ["y"], ["relu"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    return _save(graph, tmp_path / "linear.onnx")


@pytest.fixture
def fp16_unet_like_onnx(tmp_path):
    """sample float16 [B,4,h,w], timestep float32 [B] -> noise_pred = sample * 2 + timestep (fp16)."""
    nodes = [
        helper.make_node("Cast", ["timestep"], ["t16"], to=TensorProto.FLOAT16),
        helper.make_node("Reshape", ["t16", "shape"], ["t4"]),
        helper.make_node("Mul", ["sample", "two"], ["s2"]),
        helper.make_node("Add", ["s2", "t4"], ["noise_pred"]),
    ]
    graph = helper.make_graph(
        nodes,
        "unet_like",
        [
            helper.make_tensor_value_info("sample", TensorProto.FLOAT16, ["batch", 4, "h", "w"]),
            helper.make_tensor_value_info("timestep", TensorProto.FLOAT, ["batch"]),
        ],
        [helper.make_tensor_value_info("noise_pred", TensorProto.FLOAT16, ["batch", 4, "h", "w"])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 1, 1, 1], np.int64), "shape"),
            numpy_helper.from_array(np.array(2, np.float16), "two"),
        ],
    )
    return _save(graph, tmp_path / "unet_like.onnx")


@pytest.fixture
def text_encoder_like_onnx(tmp_path):
    """input_ids int32 [B, 77] -> last_hidden_state = TABLE[input_ids] (Gather)."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)],
        "text_encoder_like",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", 77])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", 77, 8])],
        initializer=[numpy_helper.from_array(TABLE, "table")],
    )
    return _save(graph, tmp_path / "text_encoder_like.onnx")


def test_linear_against_numpy(linear_onnx):
    engine = OrtEngine(linear_onnx, provider="cpu")
    assert isinstance(engine, Engine) and engine.xp is np
    assert engine.input_names == ["x"] and engine.output_names == ["y", "relu"]
    spec = engine.inputs["x"]
    assert spec.dtype == np.float32 and spec.shape == ("batch", 4)
    assert engine.outputs["relu"].shape == ("batch", 3)
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    out = engine(x=x)
    np.testing.assert_allclose(out["y"], x @ W + B, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["relu"], np.maximum(x @ W + B, 0), rtol=1e-5, atol=1e-6)
    assert out["y"].dtype == np.float32
    assert engine.run({"x": x[:1]})["y"].shape == (1, 3)  # dynamic batch
    assert "linear" in repr(engine)


def test_float32_is_cast_into_an_fp16_graph(fp16_unet_like_onnx):
    engine = OrtEngine(fp16_unet_like_onnx)
    sample = RNG.standard_normal((2, 4, 8, 8)).astype(np.float32)
    timestep = np.array([999, 1], dtype=np.int64)  # integer timesteps are cast to float too
    out = engine(sample=sample, timestep=timestep)["noise_pred"]
    expected = sample.astype(np.float16) * np.float16(2) + timestep.astype(np.float16)[:, None, None, None]
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, expected)


def test_int64_ids_are_cast_to_int32(text_encoder_like_onnx):
    engine = OrtEngine(text_encoder_like_onnx)
    ids = RNG.integers(0, 50, size=(2, 77), dtype=np.int64)
    out = engine(input_ids=ids)["last_hidden_state"]
    np.testing.assert_array_equal(out, TABLE[ids])
    with pytest.raises(ValueError, match="do not fit"):
        engine(input_ids=np.full((1, 77), 2**40, dtype=np.int64))
    with pytest.raises(TypeError, match="expects int32, got float32"):
        engine(input_ids=ids.astype(np.float32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_exported_module_against_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(8, 4, 1)
    )
    module.eval()
    sample = torch.randn(2, 4, 16, 16)
    path = tmp_path / "conv.onnx"
    try:
        torch.onnx.export(
            module,
            (sample,),
            str(path),
            input_names=["sample"],
            output_names=["noise_pred"],
            dynamic_axes={"sample": {0: "batch"}, "noise_pred": {0: "batch"}},
            dynamo=False,
        )
    except Exception as error:  # exporter unavailable in this torch build
        pytest.skip(f"torch.onnx.export failed: {error}")
    engine = OrtEngine(path)
    with torch.no_grad():
        expected = module(sample).numpy()
    got = engine(sample=sample.numpy())["noise_pred"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_input_checks_name_the_problem(linear_onnx, fp16_unet_like_onnx):
    engine = OrtEngine(linear_onnx, name="linear_engine")
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"linear_engine.*missing \['x'\]"):
        engine.run({})
    with pytest.raises(ValueError, match=r"unknown \['z'\]"):
        engine.run({"x": x, "z": x})
    with pytest.raises(ValueError, match="expects rank 2"):
        engine(x=np.zeros((2, 4, 1), np.float32))
    with pytest.raises(ValueError, match="expects size 4 on axis 1"):
        engine(x=np.zeros((2, 5), np.float32))
    unet = OrtEngine(fp16_unet_like_onnx)
    with pytest.raises(TypeError, match="timestep"):
        unet(sample=np.zeros((1, 4, 2, 2), np.float32), timestep=np.array(["a"]))


def test_missing_file_and_bad_provider(tmp_path, linear_onnx):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OrtEngine(tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match="TrtEngine"):
        OrtEngine(linear_onnx, provider="tensorrt")


def test_cuda_without_gpu_packages_names_the_extra(linear_onnx, monkeypatch):
    real_import = importlib.import_module

    def no_cupy(name, *args):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args)

    monkeypatch.setattr(providers.importlib, "import_module", no_cupy)
    with pytest.raises(ProviderNotAvailableError, match=r"sdrt\[cuda\]"):
        OrtEngine(linear_onnx, provider="cuda")


def test_missing_onnxruntime_names_the_extra(linear_onnx, monkeypatch):
    real_import = importlib.import_module

    def no_ort(name, *args):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args)

    monkeypatch.setattr(providers.importlib, "import_module", no_ort)
    with pytest.raises(ProviderNotAvailableError, match=r"pip install 'sdrt\[cpu\]'"):
        OrtEngine(linear_onnx, provider="cpu")


def test_select_provider(monkeypatch):
    assert select_provider("cpu") == "cpu"
    available = {"tensorrt": False, "cuda": False, "openvino": False, "cpu": True}
    monkeypatch.setattr(providers, "provider_available", lambda p: available[p])
    assert select_provider("auto") == "cpu"
    with pytest.raises(ProviderNotAvailableError, match=r"sdrt\[openvino\]'$"):
        select_provider("openvino")
    available.update(openvino=True)
    assert select_provider("auto") == "openvino"
    assert select_provider("auto", candidates=("tensorrt", "cuda", "cpu")) == "cpu"
    with pytest.raises(ProviderNotAvailableError, match=r"sdrt\[cuda\]"):
        select_provider("cuda")
    with pytest.raises(ProviderNotAvailableError, match=r"sdrt\[tensorrt\]"):
        select_provider("tensorrt")
    available.update(cuda=True, tensorrt=True)
    assert select_provider("auto") == "tensorrt"
    assert select_provider("auto", candidates=("cuda", "cpu")) == "cuda"
    available.update(cpu=False, cuda=False, tensorrt=False, openvino=False)
    with pytest.raises(ProviderNotAvailableError, match="no provider"):
        select_provider("auto")
    with pytest.raises(ValueError, match="unknown provider"):
        select_provider("metal")


def test_real_availability_here():
    """On this machine: cpu is available; cuda/tensorrt only with a GPU."""
    assert providers.provider_available("cpu")
    if not providers.has_cuda_device():
        assert not providers.provider_available("cuda")
        assert not providers.provider_available("tensorrt")


@pytest.mark.cupy
def test_cuda_engine_matches_cpu(linear_onnx, fp16_unet_like_onnx):
    cp = pytest.importorskip("cupy")
    if not providers.provider_available("cuda"):
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    cpu = OrtEngine(linear_onnx, provider="cpu")
    gpu = OrtEngine(linear_onnx, provider="cuda")
    assert gpu.xp is cp
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    out = gpu(x=cp.asarray(x))
    assert isinstance(out["y"], cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(out["y"]), cpu(x=x)["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cp.asnumpy(gpu(x=x)["relu"]), cpu(x=x)["relu"], rtol=1e-5, atol=1e-5)
    unet = OrtEngine(fp16_unet_like_onnx, provider="cuda")
    sample = cp.asarray(RNG.standard_normal((2, 4, 8, 8)).astype(np.float32))
    result = unet(sample=sample, timestep=cp.asarray([5.0, 7.0], dtype=cp.float32))["noise_pred"]
    assert result.dtype == cp.float16 and result.shape == (2, 4, 8, 8)
