"""The per-machine cache of ONNX Runtime's *all*-level CPU graphs: the first load saves the graph, later
loads open it (same outputs as ONNX Runtime optimizing the source graph itself), a rebuild or a damaged
entry is optimized again, and ``SDRT_CACHE_DIR=`` turns it off."""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from sdrt.runtime.engines.ort.engine import OrtEngine  # noqa: E402
from sdrt.runtime.errors import EngineError  # noqa: E402


def _conv_graph(path, seed: int = 0):
    """Conv -> Relu -> Conv: what the *all* level rewrites into NCHWc on x86."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array(rng.standard_normal((16, c, 3, 3)).astype(np.float32), f"w{i}")
        for i, c in enumerate((8, 16))
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Conv", ["r", "w1"], ["y"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16, 16, 16])],
        initializer=weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _reference(path, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SDRT_CACHE_DIR", str(folder))
    return folder / "ort"


def test_first_load_saves_later_loads_open_the_cached_graph(tmp_path, cache):
    graph = _conv_graph(tmp_path / "conv.onnx")
    x = np.random.default_rng(1).standard_normal((2, 8, 16, 16)).astype(np.float32)
    first = OrtEngine(graph, name="conv")
    assert first.graph_path == graph
    entries = list(cache.iterdir())
    assert len(entries) == 1 and (entries[0] / "graph.onnx").is_file()
    second = OrtEngine(graph, name="conv")
    assert second.graph_path == entries[0] / "graph.onnx"
    expected = _reference(graph, x)
    for engine in (first, second):
        np.testing.assert_allclose(engine.run({"x": x})["y"], expected, rtol=1e-5, atol=1e-5)


def test_a_rebuilt_graph_replaces_its_stale_entry(tmp_path, cache):
    graph = _conv_graph(tmp_path / "conv.onnx")
    OrtEngine(graph, name="conv")
    old = list(cache.iterdir())
    _conv_graph(graph, seed=1)
    os.utime(graph, ns=(1, 1))  # a new mtime whatever the file system's clock resolution
    x = np.ones((1, 8, 16, 16), np.float32)
    engine = OrtEngine(graph, name="conv")
    assert engine.graph_path == graph and list(cache.iterdir()) != old and len(list(cache.iterdir())) == 1
    np.testing.assert_allclose(engine.run({"x": x})["y"], _reference(graph, x), rtol=1e-5, atol=1e-5)


def test_a_damaged_entry_is_optimized_again(tmp_path, cache):
    graph = _conv_graph(tmp_path / "conv.onnx")
    OrtEngine(graph, name="conv")
    (entry,) = cache.iterdir()
    (entry / "graph.onnx").write_bytes(b"not a graph")
    x = np.ones((1, 8, 16, 16), np.float32)
    engine = OrtEngine(graph, name="conv")
    assert engine.graph_path == graph and (entry / "graph.onnx").stat().st_size > 100
    np.testing.assert_allclose(engine.run({"x": x})["y"], _reference(graph, x), rtol=1e-5, atol=1e-5)


def test_empty_cache_dir_turns_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SDRT_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    graph = _conv_graph(tmp_path / "conv.onnx")
    for _ in range(2):
        assert OrtEngine(graph, name="conv").graph_path == graph
    assert not (tmp_path / "home").exists()


def test_an_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("SDRT_CACHE_DIR", str(blocker / "cache"))
    graph = _conv_graph(tmp_path / "conv.onnx")
    x = np.ones((1, 8, 16, 16), np.float32)
    np.testing.assert_allclose(
        OrtEngine(graph).run({"x": x})["y"], _reference(graph, x), rtol=1e-5, atol=1e-5
    )


def test_sdrt_cpu_threads_sets_the_sessions_threads(tmp_path, cache, monkeypatch):
    graph = _conv_graph(tmp_path / "conv.onnx")
    monkeypatch.setenv("SDRT_CPU_THREADS", "1")
    for _ in range(2):  # the saving load and the cached load
        engine = OrtEngine(graph, name="conv")
        assert engine.session.get_session_options().intra_op_num_threads == 1
    x = np.ones((1, 8, 16, 16), np.float32)
    np.testing.assert_allclose(engine.run({"x": x})["y"], _reference(graph, x), rtol=1e-5, atol=1e-5)
    monkeypatch.setenv("SDRT_CPU_THREADS", "some")
    with pytest.raises(EngineError, match="SDRT_CPU_THREADS"):
        OrtEngine(graph, name="conv")


def test_sdrt_cpu_threads_beyond_the_cores_is_capped_with_a_warning(tmp_path, cache, monkeypatch, caplog):
    from sdrt.runtime.engines.ort.session import usable_cores

    graph = _conv_graph(tmp_path / "conv.onnx")
    monkeypatch.setenv("SDRT_CPU_THREADS", "1000")
    with caplog.at_level("WARNING", logger="sdrt.runtime.engines.ort.session"):
        engine = OrtEngine(graph, name="conv")
    assert engine.session.get_session_options().intra_op_num_threads == usable_cores() < 1000
    assert "SDRT_CPU_THREADS=1000 is more than the" in caplog.text
