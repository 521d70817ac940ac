"""Optimization profiles from manifest dims: names, opt points, per-input shapes and the refusals made
before any build. No TensorRT needed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sdrt.export.tensorrt.cache import plan_key
from sdrt.export.tensorrt.profiles import ProfileError, ShapeProfile, profile_for
from sdrt.runtime.bundle.manifest import Manifest, Shapes, Source, VaeInfo
from sdrt.runtime.bundle.records import ComponentRecord
from sdrt.runtime.tensors import TensorSpec

MANIFEST = Manifest(
    model_type="sd1",
    pipeline_class="StableDiffusionPipeline",
    source=Source("models/sd15"),
    shapes=Shapes(batch=(1, 4), height=(256, 768), width=(256, 768), default=(512, 512)),
    vae=VaeInfo(),
)
CLASSES = {"unet": "UNet2DConditionModel", "vae_encoder": "AutoencoderKL", "vae_decoder": "AutoencoderKL"}
UNET = {
    "inputs": {
        "sample": {"dtype": "float16", "shape": ["batch", 4, "latent_height", "latent_width"]},
        "timestep": {"dtype": "float32", "shape": ["batch"]},
        "encoder_hidden_states": {"dtype": "float16", "shape": ["batch", 77, 768]},
    },
    "dims": {"batch": [2, 8], "latent_height": [32, 96], "latent_width": [32, 96]},
}
VAE_ENCODER = {
    "inputs": {"image": {"dtype": "float32", "shape": ["batch", 3, "height", "width"]}},
    "dims": {"batch": [1, 4], "height": [256, 768], "width": [256, 768]},
}


def profile_of(name: str, record: dict, manifest: Manifest = MANIFEST, **options) -> ShapeProfile:
    """``profile_for`` on a manifest record given as its JSON."""
    data = {"class": CLASSES[name], "onnx": f"onnx/{name}.onnx", "precision": "fp16", "outputs": {}, **record}
    return profile_for(ComponentRecord.from_json(name, data), manifest, **options)


def specs(inputs: dict) -> dict[str, TensorSpec]:
    return {
        name: TensorSpec(name, np.dtype(np.float32), tuple(info["shape"])) for name, info in inputs.items()
    }


def test_dynamic_profile_from_manifest_dims() -> None:
    profile = profile_of("unet", UNET, MANIFEST)
    assert profile.name == "b2-8_h32-96_w32-96" and not profile.is_static
    # opt: smallest batch, the model's default latent size
    assert dict(profile.dims) == {
        "batch": (2, 2, 8),
        "latent_height": (32, 64, 96),
        "latent_width": (32, 64, 96),
    }
    shapes = profile.input_shapes(specs(UNET["inputs"]))
    assert shapes["sample"] == ((2, 4, 32, 32), (2, 4, 64, 64), (8, 4, 96, 96))
    assert shapes["timestep"] == ((2,), (2,), (8,))
    assert shapes["encoder_hidden_states"] == ((2, 77, 768), (2, 77, 768), (8, 77, 768))


def test_static_collapses_to_opt() -> None:
    profile = profile_of("unet", UNET, MANIFEST, static=True)
    assert profile.is_static and profile.name == "b2_h64_w64"
    assert profile.input_shapes(specs(UNET["inputs"]))["sample"] == ((2, 4, 64, 64),) * 3


def test_pixel_dims_and_opt_clamped_into_range() -> None:
    record = {**VAE_ENCODER, "dims": {"batch": [1, 1], "height": [768, 1024], "width": [256, 512]}}
    profile = profile_of("vae_encoder", record, MANIFEST)
    assert profile.name == "b1_H768-1024_W256-512"
    assert dict(profile.dims)["height"] == (768, 768, 1024) and dict(profile.dims)["width"] == (256, 512, 512)


def test_requested_profile_with_explicit_opt() -> None:
    requested = {"batch": [2, 4, 4], "latent_height": [64, 64], "latent_width": [64, 96]}
    profile = profile_of("unet", UNET, MANIFEST, requested=requested)
    assert dict(profile.dims)["batch"] == (2, 4, 4) and profile.name == "b2-4_h64_w64-96"


def test_no_named_dims_is_static() -> None:
    record = {"inputs": {"latent": {"dtype": "float32", "shape": [1, 4, 64, 64]}}, "dims": {}}
    profile = profile_of("vae_decoder", record, MANIFEST)
    assert profile.name == "static" and profile.is_static
    assert profile.input_shapes(specs(record["inputs"]))["latent"] == ((1, 4, 64, 64),) * 3


def test_product_shape_entries() -> None:
    profile = ShapeProfile({"latent_height": (8, 8, 16), "batch": (1, 1, 2)})
    shapes = profile.input_shapes(specs({"image": {"shape": ["batch", 3, "8*latent_height", 64]}}))
    assert shapes["image"] == ((1, 3, 64, 64), (1, 3, 64, 64), (2, 3, 128, 64))


@pytest.mark.parametrize(
    ("name", "record", "requested", "message"),
    [
        (
            "unet",
            UNET,
            {"batch": [8, 2], "latent_height": [32, 96], "latent_width": [32, 96]},
            "min <= opt <= max",
        ),
        (
            "unet",
            UNET,
            {"batch": [2, 9, 8], "latent_height": [32, 96], "latent_width": [32, 96]},
            "min <= opt <= max",
        ),
        (
            "unet",
            UNET,
            {"batch": [0, 2], "latent_height": [32, 96], "latent_width": [32, 96]},
            "min must be >= 1",
        ),
        (
            "unet",
            UNET,
            {"batch": [2, 8], "latent_height": [16, 96], "latent_width": [32, 96]},
            "outside the exported range",
        ),
        (
            "unet",
            UNET,
            {"batch": [2, 8], "latent_height": [32, 96]},
            r"no range for dim\(s\) \['latent_width'\]",
        ),
        ("unet", UNET, {"batch": [2.5, 8], "latent_height": [32, 96], "latent_width": [32, 96]}, "integers"),
        (
            "vae_encoder",
            VAE_ENCODER,
            {"batch": [1, 4], "height": [260, 768], "width": [256, 768]},
            "multiples of 8",
        ),
        (
            "vae_encoder",
            VAE_ENCODER,
            {"batch": [1, 4], "height": [256, 768], "width": [256, 500, 768]},
            "multiples of 8",
        ),
    ],
)
def test_bad_profiles_are_refused(name: str, record: dict, requested: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        profile_of(name, record, requested=requested)


def test_bad_manifest_dims_are_refused() -> None:
    record = {**UNET, "dims": {"batch": [2, 8], "latent_height": [96, 32], "latent_width": [32, 96]}}
    with pytest.raises(ProfileError, match="latent_height"):
        profile_of("unet", record, MANIFEST)


def test_unknown_dim_in_shape_is_refused() -> None:
    with pytest.raises(ProfileError, match="'sequence' has no range"):
        ShapeProfile({"batch": (1, 1, 2)}).input_shapes(specs({"ids": {"shape": ["batch", "sequence"]}}))


def test_plan_key_changes_with_each_part() -> None:
    base = dict(
        onnx_digest="a" * 64,
        input_shapes={"x": ((1, 4), (1, 4), (2, 4))},
        precision="fp16",
        flags={"optimization_level": 3},
        trt_module="tensorrt_rtx",
        trt_version="1.7",
    )
    key = plan_key(**base)
    assert plan_key(**base) == key
    for change in (
        {"onnx_digest": "b" * 64},
        {"input_shapes": {"x": ((1, 4), (2, 4), (2, 4))}},
        {"precision": "fp32"},
        {"flags": {"optimization_level": 4}},
        {"trt_module": "tensorrt"},
        {"trt_version": "1.8"},
    ):
        assert plan_key(**{**base, **change}) != key, change


def test_bundle_shapes_give_opt_and_size_multiple() -> None:
    """build-engine's manifest: prompt batch 1..4 (UNet 1..8 with guidance), default 512 px, multiple 64."""
    shapes = replace(MANIFEST.shapes, batch=(1, 4), default=(512, 768), size_multiple=64)
    manifest = replace(MANIFEST, shapes=shapes)
    record = {**UNET, "dims": {"batch": [1, 8], "latent_height": [32, 96], "latent_width": [32, 128]}}
    profile = profile_of("unet", record, manifest)
    assert dict(profile.dims) == {
        "batch": (1, 2, 8),
        "latent_height": (32, 64, 96),
        "latent_width": (32, 96, 128),
    }
    with pytest.raises(ProfileError, match="multiples of 64 pixels"):
        profile_of("unet", record, manifest, requested={**record["dims"], "latent_height": [36, 96]})
    decoder = {
        "inputs": {"latent": {"dtype": "float16", "shape": ["batch", 4, "latent_height", "latent_width"]}},
        "dims": record["dims"],
    }
    assert dict(profile_of("vae_decoder", decoder, manifest).dims)["batch"] == (1, 1, 8)


def test_output_only_dims_are_left_out() -> None:
    record = {
        **VAE_ENCODER,
        "dims": {**VAE_ENCODER["dims"], "latent_height": [32, 96], "latent_width": [32, 96]},
    }
    assert profile_of("vae_encoder", record, MANIFEST).name == "b1-4_H256-768_W256-768"
