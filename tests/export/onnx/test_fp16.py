"""The fp16 conversion's graph repairs, checked by running the graphs in ONNX Runtime against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
ir = pytest.importorskip("onnx_ir")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sdrt.export.onnx.fp16 import convert_to_fp16, merge_duplicate_casts  # noqa: E402


def _two_upsamplers(*, duplicate_casts: bool) -> onnx.ModelProto:
    """x -> Resize(x2) -> Resize(x2) sharing one scales tensor; with ``duplicate_casts``, the graph as
    onnxruntime < 1.32's fp16 converter left it: one fp16 scales Constant and a Cast to fp32 per Resize,
    both named ``scales_cast_to_fp32``."""
    scales = np.array([1, 1, 2, 2], np.float16 if duplicate_casts else np.float32)
    nodes = [helper.make_node("Constant", [], ["scales"], value=numpy_helper.from_array(scales))]
    scale_input = "scales"
    if duplicate_casts:
        scale_input = "scales_cast_to_fp32"
        cast = dict(to=TensorProto.FLOAT, name="scales_cast_to_fp32_node")
        nodes.append(helper.make_node("Cast", ["scales"], [scale_input], **cast))
    nodes.append(helper.make_node("Resize", ["x", "", scale_input], ["y"], mode="nearest"))
    if duplicate_casts:
        nodes.append(helper.make_node("Cast", ["scales"], [scale_input], **cast))
    nodes.append(helper.make_node("Resize", ["y", "", scale_input], ["z"], mode="nearest"))
    graph = helper.make_graph(
        nodes,
        "two_upsamplers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 12, 12])],
        # the shapes an exporter records (the old converter casts only tensors it has a value_info of)
        value_info=[
            helper.make_tensor_value_info("scales", helper.np_dtype_to_tensor_dtype(scales.dtype), [4]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _nearest_x4(x: np.ndarray) -> np.ndarray:
    return x.repeat(4, axis=2).repeat(4, axis=3)


def test_duplicate_casts_of_old_converters_are_merged_into_a_valid_graph():
    model = _two_upsamplers(duplicate_casts=True)
    with pytest.raises(Exception) as failure:  # the failure seen with onnxruntime 1.31's converter
        ir.from_proto(model)
    assert "redeclared" in str(failure.value.__cause__)
    assert merge_duplicate_casts(model.graph) == 1
    ir.from_proto(model)
    onnx.checker.check_model(model)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(model, x), _nearest_x4(x))


def test_fp16_conversion_of_a_shared_resize_scale_runs(tmp_path):
    src, dst = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    onnx.save(_two_upsamplers(duplicate_casts=False), src)
    convert_to_fp16(src, dst)
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(onnx.load(dst), x), _nearest_x4(x), rtol=1e-3, atol=1e-3)


def test_distinct_casts_of_one_tensor_are_kept():
    model = _two_upsamplers(duplicate_casts=True)
    model.graph.node[3].output[0] = "scales_fp32_again"
    model.graph.node[4].input[2] = "scales_fp32_again"
    assert merge_duplicate_casts(model.graph) == 0
    assert sum(n.op_type == "Cast" for n in model.graph.node) == 2
