"""TensorRT plans for every component of a tiny SD1 bundle, built with no GPU (TensorRT-RTX's CPU-only
AOT build), plus the plan cache: nothing rebuilt when nothing changed, one plan when one profile did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sdrt.runtime.engines.tensorrt.module import TrtModuleError, import_trt

try:
    TRT = import_trt()
except TrtModuleError:
    pytest.skip("no TensorRT module installed (pip install 'sdrt[rtx]')", allow_module_level=True)

from sdrt.export.errors import OptionError  # noqa: E402
from sdrt.export.tensorrt import build as tensorrt_build  # noqa: E402
from sdrt.export.tensorrt import plan as tensorrt_plan  # noqa: E402
from sdrt.export.tensorrt.build import build_trt_plans as build_plans_typed  # noqa: E402
from sdrt.export.tensorrt.network import OnnxParseError  # noqa: E402
from sdrt.export.tensorrt.profiles import ProfileError  # noqa: E402
from sdrt.runtime.bundle.manifest import Manifest  # noqa: E402
from sdrt.runtime.engines.tensorrt.device import current_compute_capability  # noqa: E402
from sdrt.runtime.engines.tensorrt.module import is_rtx, module_label, module_version  # noqa: E402

COMPONENTS = ["text_encoder", "unet", "vae_encoder", "vae_decoder"]


def build_trt_plans(bundle: Path, manifest: dict, **options) -> dict:
    """The builder on the manifest's JSON: what it reads and what it writes are what these tests check."""
    return build_plans_typed(bundle, Manifest.from_json(manifest), **options).to_json()


def _export(model_factory, folder: Path, **options) -> tuple[Path, dict]:
    """build-engine's own path: export_pipeline(..., backend="tensorrt") on a tiny model folder."""
    from sdrt.export import export_pipeline

    model = model_factory(folder / "model")
    report = export_pipeline(
        model, folder / "bundle", backend="tensorrt", validate=False, progress=False, **options
    )
    return folder / "bundle", report.manifest.to_json()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny SD1 bundle, fp16 ONNX, dynamic batch and size: every component gets a dynamic plan."""
    from tests.models import make_sd1

    return _export(make_sd1, tmp_path_factory.mktemp("dynamic"), precision="fp16")


@pytest.fixture(scope="module")
def built_static(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The same model exported static (64 px, batch 1) with the VAE kept fp32."""
    from tests.models import make_sd1

    folder = tmp_path_factory.mktemp("static")
    return _export(make_sd1, folder, precision="fp16", height=64, width=64, static=True, vae_fp32=True)


@pytest.fixture
def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every plan actually built (the real builder still runs)."""
    calls: list[str] = []
    real = tensorrt_plan.build_plan

    def spy(job: tensorrt_plan.PlanJob) -> dict:
        calls.append(f"{job.component}.{job.profile_name}")
        return real(job)

    monkeypatch.setattr(tensorrt_build, "build_plan", spy)
    return calls


def check_plans(bundle: Path, manifest: dict, components: list[str] = COMPONENTS) -> None:
    """Every component: plan files as recorded, records complete, the manifest on disk the same."""
    on_disk = json.loads((bundle / "manifest.json").read_text())
    for component in components:
        record = manifest["components"][component]
        assert len(record["plans"]) == 1, component
        assert on_disk["components"][component]["plans"] == record["plans"]
        for name, plan in record["plans"].items():
            assert plan["file"] == f"plans/{component}.{name}.plan"
            assert (bundle / plan["file"]).stat().st_size == plan["bytes"] > 0
            assert plan["trt_module"] == module_label(TRT) and plan["trt_version"] == module_version(TRT)
            assert plan["compute_capabilities"] and plan["flags"]["optimization_level"] == 3
            assert len(plan["key"]) == 64 and plan["build_seconds"] > 0 and plan["built_at"]
            assert set(plan["input_shapes"]) == set(record["inputs"])
            for dim, (lo, opt, hi) in plan["profile"].items():
                assert record["dims"][dim] == [lo, hi] and lo <= opt <= hi
            assert plan["static"] == all(lo == hi for lo, _, hi in plan["profile"].values())


def test_dynamic_plans_for_every_component(built: tuple[Path, dict]) -> None:
    bundle, manifest = built
    check_plans(bundle, manifest)
    unet = manifest["components"]["unet"]
    name, plan = next(iter(unet["plans"].items()))
    batch, height, width = (unet["dims"][d] for d in ("batch", "latent_height", "latent_width"))
    assert name == f"b{batch[0]}-{batch[1]}_h{height[0]}-{height[1]}_w{width[0]}-{width[1]}"
    assert not plan["static"] and plan["precision"] == "fp16" and plan["flags"]["strongly_typed"]
    sample = plan["input_shapes"]["sample"]
    assert sample[0] == [batch[0], 4, height[0], width[0]] and sample[2] == [batch[1], 4, height[1], width[1]]
    assert plan["input_shapes"]["timestep"][2] == [batch[1]]
    # opt: batch 1 prompt with guidance, the default image size
    default = manifest["shapes"]["default"][0] // manifest["vae"]["scale_factor"]
    assert plan["profile"]["batch"][1] == 2 and plan["profile"]["latent_height"][1] == default
    # the VAE encoder's profile holds its input dims only (pixels), not its output's latent dims
    encoder = next(iter(manifest["components"]["vae_encoder"]["plans"].values()))
    assert set(encoder["profile"]) == {"batch", "height", "width"}


def test_static_plans_for_every_component(built_static: tuple[Path, dict]) -> None:
    bundle, manifest = built_static
    check_plans(bundle, manifest)
    assert next(iter(manifest["components"]["unet"]["plans"])) == "b2_h8_w8"
    for component in COMPONENTS:
        plan = next(iter(manifest["components"][component]["plans"].values()))
        assert plan["static"]
        fp32_onnx = manifest["components"][component]["precision"] == "fp32"
        assert fp32_onnx == component.startswith("vae")  # vae_fp32=True
        # an fp32 ONNX asked for fp16: RTX has no FP16 flag and builds it strongly typed fp32
        expected = "fp32" if fp32_onnx and is_rtx(TRT) else "fp16"
        assert plan["precision"] == expected and plan["flags"]["fp16_flag"] == (fp32_onnx and not is_rtx(TRT))


def test_deepcache_plans(tmp_path: Path) -> None:
    """build-engine --deepcache --backend tensorrt: plans for the full and shallow UNets beside the UNet; the
    shallow plan's ``cached_feature`` profile holds the feature the full graph returns at the profile's
    corners (ONNX Runtime runs that graph here, where no plan can run)."""
    import numpy as np
    import onnxruntime as ort

    from tests.models import make_sd1

    bundle, manifest = _export(make_sd1, tmp_path, precision="fp32", deepcache=0, components=["unet"])
    unets = ["unet", "unet_deepcache_full", "unet_deepcache_shallow"]
    check_plans(bundle, manifest, unets)
    shallow = next(iter(manifest["components"]["unet_deepcache_shallow"]["plans"].values()))
    assert shallow["profile"] == next(iter(manifest["components"]["unet"]["plans"].values()))["profile"]
    full = manifest["components"]["unet_deepcache_full"]
    session = ort.InferenceSession(str(bundle / full["onnx"]), providers=["CPUExecutionProvider"])
    for corner in (0, 2):  # the profile's min and max
        shapes = shallow["input_shapes"]
        feeds = {
            i.name: np.zeros(shapes[i.name][corner], np.int64 if "int64" in i.type else np.float32)
            for i in session.get_inputs()
        }
        feature = session.run(["cached_feature"], feeds)[0]
        assert list(feature.shape) == shapes["cached_feature"][corner]


def test_build_engine_again_rebuilds_nothing(built: tuple[Path, dict], count_builds: list[str]) -> None:
    """The same export_pipeline call again: components unchanged, plans kept, nothing rebuilt."""
    from sdrt.export import build_engines, export_pipeline

    bundle, manifest = built
    mtimes = {p.name: p.stat().st_mtime_ns for p in (bundle / "plans").iterdir()}
    report = export_pipeline(
        manifest["source"]["path"],
        bundle,
        backend="tensorrt",
        precision="fp16",
        validate=False,
        progress=False,
    )
    assert count_builds == []
    assert {p.name: p.stat().st_mtime_ns for p in (bundle / "plans").iterdir()} == mtimes
    for component in COMPONENTS:
        assert (
            report.manifest.to_json()["components"][component]["plans"]
            == manifest["components"][component]["plans"]
        )
    again = build_engines(bundle, backend="tensorrt", precision="fp16").to_json()
    assert (
        count_builds == [] and again["components"]["unet"]["plans"] == manifest["components"]["unet"]["plans"]
    )


def test_records_on_disk_count_when_the_manifest_lost_them(
    built: tuple[Path, dict], count_builds: list[str]
) -> None:
    bundle, manifest = built
    fresh = json.loads(json.dumps(manifest))
    for record in fresh["components"].values():
        record.pop("plans", None)
    again = build_trt_plans(bundle, fresh, components=["unet", "vae_decoder"])
    assert count_builds == []
    assert again["components"]["unet"]["plans"] == manifest["components"]["unet"]["plans"]


@pytest.fixture
def copy_of(tmp_path: Path):
    def copy(source: tuple[Path, dict]) -> tuple[Path, dict]:
        bundle = tmp_path / "bundle"
        shutil.copytree(source[0], bundle)
        return bundle, json.loads(json.dumps(source[1]))

    return copy


def test_changed_profile_rebuilds_only_that_plan(
    built: tuple[Path, dict], copy_of, count_builds: list[str]
) -> None:
    bundle, manifest = copy_of(built)
    dims = manifest["components"]["vae_decoder"]["dims"]
    name, old = next(iter(manifest["components"]["vae_decoder"]["plans"].items()))
    lo, hi = dims["latent_height"]
    opt = hi if old["profile"]["latent_height"][1] != hi else lo
    profiles = {"vae_decoder": {**dims, "latent_height": [lo, opt, hi]}}  # same range, new opt point
    updated = build_trt_plans(bundle, manifest, components=COMPONENTS, profiles=profiles)
    assert count_builds == [f"vae_decoder.{name}"]
    new = updated["components"]["vae_decoder"]["plans"][name]
    assert new["key"] != old["key"] and new["profile"]["latent_height"] == [lo, opt, hi]
    for component in ("text_encoder", "unet", "vae_encoder"):
        assert updated["components"][component]["plans"] == manifest["components"][component]["plans"]
    narrower = {"vae_decoder": {**dims, "batch": [1, 1]}}  # a new range: a second plan beside the first
    updated = build_trt_plans(bundle, updated, components=["vae_decoder"], profiles=narrower)
    assert len(updated["components"]["vae_decoder"]["plans"]) == 2 and len(count_builds) == 2


def test_changed_onnx_or_flags_rebuild(built: tuple[Path, dict], copy_of, count_builds: list[str]) -> None:
    bundle, manifest = copy_of(built)
    onnx_path = bundle / manifest["components"]["text_encoder"]["onnx"]
    onnx_path.write_bytes(onnx_path.read_bytes())  # same bytes, new mtime: not a change
    build_trt_plans(bundle, manifest, components=["text_encoder"])
    assert count_builds == []
    build_trt_plans(bundle, manifest, components=["text_encoder"], optimization_level=2)
    assert len(count_builds) == 1
    import onnx

    model = onnx.load(onnx_path)
    model.doc_string = "changed"
    onnx.save(model, onnx_path)
    build_trt_plans(bundle, manifest, components=["text_encoder"])
    assert len(count_builds) == 2


def test_targets_recorded(built: tuple[Path, dict], copy_of) -> None:
    if not is_rtx(TRT):
        pytest.skip("compute-capability targets exist only in TensorRT-RTX")
    bundle, manifest = copy_of(built)
    manifest = build_trt_plans(
        bundle, manifest, components=["text_encoder"], target_compute=["8.6", "sm120"], static=True
    )
    plan = next(p for p in manifest["components"]["text_encoder"]["plans"].values() if p["static"])
    assert plan["compute_capabilities"] == ["8.6", "12.0"] == plan["flags"]["compute_capabilities"]
    assert (bundle / plan["file"]).is_file()


def test_refittable(built: tuple[Path, dict], copy_of, count_builds: list[str]) -> None:
    bundle, manifest = copy_of(built)
    if is_rtx(TRT) and current_compute_capability() is None:
        with pytest.raises(OptionError, match="refittable plans without a GPU"):
            build_trt_plans(bundle, manifest, components=["text_encoder"], refittable=True)
        assert count_builds == []
        return
    manifest = build_trt_plans(bundle, manifest, components=["text_encoder"], refittable=True)
    assert next(iter(manifest["components"]["text_encoder"]["plans"].values()))["flags"]["refittable"] is True


def test_unknown_target_compute_is_refused(built: tuple[Path, dict]) -> None:
    with pytest.raises(OptionError, match="compute capabilit"):
        build_trt_plans(built[0], built[1], components=["unet"], target_compute=["4.2"])


def _unet_dims(manifest: dict, **change: list[int]) -> dict:
    return {"unet": {**manifest["components"]["unet"]["dims"], **change}}


def test_bad_profile_refused_before_building(built: tuple[Path, dict], count_builds: list[str]) -> None:
    bundle, manifest = built
    hi = manifest["components"]["unet"]["dims"]["latent_height"][1]
    for profiles, message in [
        (_unet_dims(manifest, batch=[4, 2]), "min <= opt <= max"),
        (_unet_dims(manifest, latent_height=[8, hi * 2]), "outside the exported range"),
    ]:
        with pytest.raises(ProfileError, match=message):
            build_trt_plans(
                bundle, manifest, components=["text_encoder", "unet"], profiles=profiles, force=True
            )
    assert count_builds == []


def test_pixel_size_off_the_multiple_is_refused(built: tuple[Path, dict], count_builds: list[str]) -> None:
    bundle, manifest = built
    dims = manifest["components"]["vae_encoder"]["dims"]
    profiles = {"vae_encoder": {**dims, "height": [dims["height"][0], dims["height"][1] - 4]}}
    with pytest.raises(ProfileError, match="multiples of"):
        build_trt_plans(bundle, manifest, components=["vae_encoder"], profiles=profiles, force=True)
    assert count_builds == []


def test_parse_failure_names_node_and_operator(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    relu = helper.make_node("Relu", ["latent"], ["hidden"], name="relu_ok")
    bad = helper.make_node(
        "FancyUpsample", ["hidden"], ["image"], name="decoder/fancy_up", domain="com.example"
    )
    graph = helper.make_graph(
        [relu, bad],
        "bad",
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 4, 8, 8])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    (tmp_path / "onnx").mkdir()
    onnx.save(model, tmp_path / "onnx" / "vae_decoder.onnx")
    manifest = {
        "format_version": 1,
        "model_type": "sd1",
        "source": {"path": "models/bad"},
        "shapes": {"batch": [1, 2], "height": [64, 64], "width": [64, 64], "default": [64, 64]},
        "vae": {"scale_factor": 8},
        "components": {
            "vae_decoder": {
                "class": "AutoencoderKL",
                "onnx": "onnx/vae_decoder.onnx",
                "precision": "fp32",
                "inputs": {"latent": {"dtype": "float32", "shape": ["batch", 4, 8, 8]}},
                "outputs": {"image": {"dtype": "float32", "shape": ["batch", 4, 8, 8]}},
                "dims": {"batch": [1, 2]},
            }
        },
    }
    with pytest.raises(OnnxParseError) as caught:
        build_trt_plans(tmp_path, manifest, components=["vae_decoder"], precision="fp32")
    assert "'decoder/fancy_up' (op FancyUpsample)" in str(caught.value)
    assert not list((tmp_path / "plans").glob("*.plan"))


def test_unknown_component_is_refused(built: tuple[Path, dict]) -> None:
    with pytest.raises(OptionError, match="no component"):
        build_trt_plans(built[0], built[1], components=["text_encoder_2"])


def test_isolated_build_in_child_process(built: tuple[Path, dict], copy_of) -> None:
    bundle, manifest = copy_of(built)
    manifest = build_trt_plans(bundle, manifest, components=["text_encoder"], isolate=True, force=True)
    plan = next(iter(manifest["components"]["text_encoder"]["plans"].values()))
    assert (bundle / plan["file"]).stat().st_size == plan["bytes"] and plan["key"] == next(
        iter(built[1]["components"]["text_encoder"]["plans"].values())
    )["key"]
