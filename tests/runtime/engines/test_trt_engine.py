"""TrtEngine as far as a machine without a GPU allows: dtype mapping, input checks against a plan's
profile, plan choice, version/module checks with the rebuild command, and construction from a plan
built here (which must fail cleanly, naming the missing GPU, when there is none)."""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sdrt.runtime.bundle.manifest import Manifest, Shapes, Source, VaeInfo, read_manifest, write_manifest
from sdrt.runtime.bundle.records import ComponentRecord, PlanRecord
from sdrt.runtime.engines.base import Engine
from sdrt.runtime.engines.tensorrt.io import numpy_dtype, specs_from_record
from sdrt.runtime.engines.tensorrt.plan import (
    PlanLoadError,
    check_plan_record,
    rebuild_command,
    select_plan,
    validity_problems,
)
from sdrt.runtime.errors import BundleError, EngineError, InputError, InputTypeError
from sdrt.runtime.tensors import TensorSpec

COMPONENT = ComponentRecord.from_json(
    "vae_decoder",
    {
        "class": "AutoencoderKL",
        "onnx": "onnx/vae_decoder.onnx",
        "precision": "fp16",
        "inputs": {
            "latent": {"dtype": "float16", "shape": ["batch", 4, "latent_height", "latent_width"]},
            "timestep": {"dtype": "float32", "shape": ["batch"]},
        },
        "outputs": {"image": {"dtype": "float16", "shape": ["batch", 4, "latent_height", "latent_width"]}},
        "dims": {"batch": [1, 2], "latent_height": [8, 16], "latent_width": [8, 8]},
    },
)
PLAN = PlanRecord(
    file="plans/vae_decoder.b1-2_h8-16_w8.plan",
    trt_module="tensorrt_rtx",
    trt_version="1.7.1.116",
    precision="fp16",
    profile={"batch": [1, 1, 2], "latent_height": [8, 8, 16], "latent_width": [8, 8, 8]},
    input_shapes={"latent": [[1, 4, 8, 8], [1, 4, 8, 8], [2, 4, 16, 8]], "timestep": [[1], [1], [2]]},
    key="k",
)


def fake_trt(name: str, version: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__version__ = version  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("trt_name", "dtype"),
    [
        ("FLOAT", np.float32),
        ("HALF", np.float16),
        ("INT32", np.int32),
        ("INT64", np.int64),
        ("BOOL", np.bool_),
    ],
)
def test_dtype_mapping(trt_name: str, dtype: type) -> None:
    assert numpy_dtype(trt_name) == np.dtype(dtype)
    assert numpy_dtype(f"DataType.{trt_name}") == np.dtype(dtype)


def test_dtype_mapping_of_module_members() -> None:
    from sdrt.runtime.engines.tensorrt.module import TrtModuleError, import_trt

    try:
        trt = import_trt()
    except TrtModuleError:
        pytest.skip("no TensorRT module installed")
    assert numpy_dtype(trt.DataType.HALF) == np.float16 and numpy_dtype(trt.DataType.INT32) == np.int32
    with pytest.raises(EngineError, match="BF16 has no NumPy"):
        numpy_dtype(trt.DataType.BF16)


def feeds(batch: int = 2, height: int = 16, dtype: type = np.float16) -> dict:
    return {"latent": np.zeros((batch, 4, height, 8), dtype), "timestep": np.zeros(batch, np.float32)}


class PlanInputs(Engine):
    """The checks every Engine (TrtEngine too) makes on its feeds, over a plan's specs, with no GPU."""

    xp = np

    def __init__(self, inputs: dict) -> None:
        self.name, self.inputs, self.outputs = "vae_decoder plan", inputs, {}

    def run(self, feeds):  # pragma: no cover - never run
        raise AssertionError


def check_feeds(inputs: dict, feeds: dict) -> dict:
    return PlanInputs(inputs).check_inputs(feeds)


def test_inputs_checked_against_the_profile() -> None:
    inputs, outputs = specs_from_record(COMPONENT, PLAN)
    assert (
        inputs["latent"].shape == (None, 4, None, 8) and inputs["latent"].allowed() == "[1..2, 4, 8..16, 8]"
    )
    assert outputs["image"].dtype == np.float16 and outputs["image"].profile is None
    check_feeds(inputs, feeds())
    with pytest.raises(
        InputError,
        match=r"'latent' has shape \[3, 4, 16, 8\], outside the plan's profile \[1..2, 4, 8..16, 8\]",
    ):
        check_feeds(inputs, feeds(batch=3))
    with pytest.raises(InputError, match="expects rank 4"):
        check_feeds(inputs, {**feeds(), "latent": np.zeros((2, 4, 16), np.float16)})
    # a float32 latent into the fp16 plan is cast, as every engine casts it; a float into an int input is not
    assert check_feeds(inputs, feeds(dtype=np.float32))["latent"].dtype == np.float16
    int_inputs, _ = specs_from_record(
        ComponentRecord.from_json(
            "x", {**COMPONENT.to_json(), "inputs": {"ids": {"dtype": "int32", "shape": ["batch"]}}}
        ),
        PlanRecord(**{**PLAN.to_json(), "input_shapes": {"ids": [[1], [1], [2]]}}),
    )
    with pytest.raises(InputTypeError, match="'ids' expects int32, got float32"):
        check_feeds(int_inputs, {"ids": np.zeros(2, np.float32)})
    with pytest.raises(InputError, match=r"missing \['timestep'\]; unknown \['t'\]"):
        check_feeds(inputs, {"latent": feeds()["latent"], "t": np.zeros(2, np.float32)})


def test_static_spec_without_profile() -> None:
    spec = TensorSpec("x", np.dtype(np.float32), (1, 3))
    assert spec.accepts((1, 3)) and not spec.accepts((2, 3))


def test_select_plan() -> None:
    plan = {
        "trt_module": "tensorrt",
        "trt_version": "10",
        "input_shapes": {},
        "precision": "fp16",
        "key": "k",
    }
    dynamic = PlanRecord(
        profile={"batch": [1, 1, 4], "latent_height": [32, 64, 96]}, static=False, file="d", **plan
    )
    static = PlanRecord(
        profile={"batch": [2, 2, 2], "latent_height": [64, 64, 64]}, static=True, file="s", **plan
    )
    plans = {"b1-4_h32-96": dynamic, "b2_h64": static}
    assert select_plan(plans, dims={"batch": 2, "latent_height": 64})[0] == "b2_h64"
    assert select_plan(plans, dims={"batch": 1, "latent_height": 80})[0] == "b1-4_h32-96"
    assert select_plan(plans, profile="b2_h64")[1] is static
    with pytest.raises(BundleError, match="no plan covers"):
        select_plan(plans, dims={"batch": 8, "latent_height": 64})
    with pytest.raises(BundleError, match="several plans"):
        select_plan(plans)
    with pytest.raises(BundleError, match="build-engine --backend tensorrt"):
        select_plan({})


def test_version_and_module_mismatch_name_the_rebuild_command() -> None:
    command = rebuild_command("models/sd 15", Path("engines/sd15"), "vae_decoder", PLAN.precision)
    assert (
        command
        == "build-engine 'models/sd 15' -o engines/sd15 --backend tensorrt --components vae_decoder --precision fp16"
    )
    check_plan_record(PLAN, fake_trt("tensorrt_rtx_bindings", "1.7.1.116"), rebuild=command)
    with pytest.raises(
        PlanLoadError, match=r"built with tensorrt_rtx 1.7.1.116; the installed one is 1.8.0"
    ) as caught:
        check_plan_record(PLAN, fake_trt("tensorrt_rtx_bindings", "1.8.0"), rebuild=command)
    assert command in str(caught.value)
    with pytest.raises(PlanLoadError, match="this process uses tensorrt 10.9"):
        check_plan_record(PLAN, fake_trt("tensorrt", "10.9"), rebuild=command)


def test_validity_diagnostics_are_spelled_out() -> None:
    trt = fake_trt("tensorrt_rtx_bindings", "1.7")
    trt.EngineInvalidityDiagnostics = types.SimpleNamespace(  # type: ignore[attr-defined]
        __members__={"VERSION_MISMATCH": 1, "UNSUPPORTED_CC": 2}
    )
    runtime = types.SimpleNamespace(
        get_engine_validity=lambda data: (types.SimpleNamespace(name="INVALID"), 2)
    )
    assert validity_problems(runtime, b"", trt) == ["not built for this GPU's compute capability"]
    assert validity_problems(types.SimpleNamespace(), b"", trt) == []


def test_runtime_imports_no_torch_tensorrt_or_cupy() -> None:
    code = (
        "import sys; import sdrt.runtime.engines.tensorrt.engine, sdrt.runtime.engines.tensorrt.io, sdrt.runtime.engines.tensorrt.plan; "
        "bad = [m for m in ('torch', 'diffusers', 'transformers', 'tensorrt', 'tensorrt_rtx_bindings', 'cupy') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle with one small plan built here (an fp16 Conv+Relu 'vae_decoder')."""
    from sdrt.runtime.engines.tensorrt.module import TrtModuleError, import_trt

    try:
        import_trt()
    except TrtModuleError:
        pytest.skip("no TensorRT module installed (pip install 'sdrt[rtx]')")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from sdrt.export.tensorrt.build import build_trt_plans

    bundle = tmp_path_factory.mktemp("trt") / "bundle"
    (bundle / "onnx").mkdir(parents=True)
    weight = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 4, 3, 3)).astype(np.float16), "w"
    )
    nodes = [
        helper.make_node("Conv", ["latent", "w"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv"], ["image"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT16, ["batch", 4, "h", "w"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT16, ["batch", 4, "h", "w"])],
        [weight],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        bundle / "onnx" / "vae_decoder.onnx",
    )
    shape = ["batch", 4, "latent_height", "latent_width"]
    record = {
        "class": "AutoencoderKL",
        "onnx": "onnx/vae_decoder.onnx",
        "precision": "fp16",
        "inputs": {"latent": {"dtype": "float16", "shape": shape}},
        "outputs": {"image": {"dtype": "float16", "shape": shape}},
        "dims": {"batch": [1, 2], "latent_height": [8, 16], "latent_width": [8, 16]},
    }
    manifest = Manifest(
        model_type="sd1",
        pipeline_class="StableDiffusionPipeline",
        source=Source("models/tiny"),
        shapes=Shapes(batch=(1, 2), height=(64, 128), width=(64, 128), default=(64, 64)),
        vae=VaeInfo(),
        components={"vae_decoder": ComponentRecord.from_json("vae_decoder", record)},
    )
    manifest = build_trt_plans(bundle, manifest, components=["vae_decoder"])
    manifest = build_trt_plans(bundle, manifest, components=["vae_decoder"], static=True)
    write_manifest(bundle, manifest)
    return bundle


def test_engine_from_a_plan_built_here(tiny_bundle: Path) -> None:
    from sdrt.runtime.engines.tensorrt.device import current_compute_capability
    from sdrt.runtime.engines.tensorrt.engine import TrtEngine

    if current_compute_capability() is None:
        with pytest.raises(PlanLoadError) as caught:
            TrtEngine.from_bundle(tiny_bundle, "vae_decoder", dims={"batch": 1, "latent_height": 8})
        message = str(caught.value)
        assert "no NVIDIA GPU or CUDA driver here" in message and "vae_decoder.b1_h8_w8.plan" in message
        assert "build-engine models/tiny -o" in message and "--components vae_decoder" in message
        return
    engine = TrtEngine.from_bundle(tiny_bundle, "vae_decoder", dims={"batch": 2, "latent_height": 12})
    assert set(engine.inputs) == {"latent"} and engine.inputs["latent"].allowed() == "[1..2, 4, 8..16, 8..16]"
    with pytest.raises(InputError, match="outside the plan's profile"):
        engine.check_inputs({"latent": np.zeros((3, 4, 8, 8), np.float16)})


def test_engine_refuses_mismatched_record_before_loading(tiny_bundle: Path) -> None:
    from sdrt.runtime.engines.tensorrt.engine import TrtEngine

    plan = read_manifest(tiny_bundle).components["vae_decoder"].plans["b1_h8_w8"]
    rebuild = rebuild_command("models/tiny", tiny_bundle, "vae_decoder", plan.precision)
    with pytest.raises(PlanLoadError, match=r"installed one is .*\n  build-engine models/tiny"):
        TrtEngine(tiny_bundle / plan.file, replace(plan, trt_version="0.0.1"), rebuild=rebuild)
    with pytest.raises(PlanLoadError, match="is missing; build it"):
        TrtEngine(tiny_bundle / "plans" / "gone.plan", plan, component="vae_decoder", rebuild=rebuild)
    other = "tensorrt" if plan.trt_module == "tensorrt_rtx" else "tensorrt_rtx"
    with pytest.raises(PlanLoadError, match="rebuild"):
        TrtEngine(tiny_bundle / plan.file, replace(plan, trt_module=other), rebuild=rebuild)


def test_engine_from_bundle_errors(tiny_bundle: Path) -> None:
    from sdrt.runtime.engines.tensorrt.engine import TrtEngine

    with pytest.raises(BundleError, match="has no unet engine"):
        TrtEngine.from_bundle(tiny_bundle, "unet")
    with pytest.raises(BundleError, match="no plan covers"):
        TrtEngine.from_bundle(tiny_bundle, "vae_decoder", dims={"batch": 4})
