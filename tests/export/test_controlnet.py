"""``build-engine --controlnet``: each ControlNet its own engine, matching diffusers' ControlNetModel (with the
runtime's scaling and guess mode), and a UNet that takes the residuals as diffusers' UNet does; bad folders
are refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdrt.cli.build_engine import main
from tests.parity import controlnet_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def built(model_folders, tmp_path_factory):
    model = model_folders("sd1")
    bundle, nets = controlnet_bundle(tmp_path_factory.mktemp("controlnet_export"), model)
    return model, bundle, nets


def _inputs(width: int, batch: int = 2, size: int = 8):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((batch, 4, size, size + 4)).astype(np.float32),
        rng.standard_normal((batch, 77, width)).astype(np.float32),
        rng.uniform(0, 1, (batch, 3, 8 * size, 8 * (size + 4))).astype(np.float32),
    )


def _close(actual, expected) -> None:
    expected = expected.numpy() if hasattr(expected, "numpy") else expected
    assert np.abs(actual - expected).max() <= 1e-4 * max(np.abs(expected).max(), 1e-6)


def test_manifest_names_the_controlnets_and_the_unet_takes_their_residuals(built):
    from sdrt.runtime.bundle.bundle import open_bundle

    _, bundle, nets = built
    manifest = open_bundle(bundle).manifest
    assert list(manifest.controlnets) == ["controlnet", "controlnet_edges"]
    assert manifest.source.controlnets == [str(n.resolve()) for n in nets]
    reference = diffusers.ControlNetModel.from_pretrained(nets[0])
    count = len(reference.controlnet_down_blocks)  # diffusers' own count of down residuals
    unet_inputs = manifest.components["unet"].inputs
    assert [n for n in unet_inputs if n.startswith("down_block")] == [
        f"down_block_additional_residual_{i}" for i in range(count)
    ]
    assert "mid_block_additional_residual" in unet_inputs
    outputs = manifest.components["controlnet_edges"].outputs
    assert len(outputs) == count + 1


def test_tensorrt_profiles_keep_the_residual_sizes_consistent(built):
    from sdrt.export.tensorrt.profiles import profile_for
    from sdrt.runtime.bundle.bundle import open_bundle

    manifest = open_bundle(built[1]).manifest
    unet = profile_for(manifest.components["unet"], manifest).dims
    net = profile_for(manifest.components["controlnet"], manifest).dims
    for k in range(3):  # min, opt, max
        assert unet["latent_height_div2"][k] == -(-unet["latent_height"][k] // 2)
        assert net["height"][k] == 8 * net["latent_height"][k]


@pytest.mark.parametrize(("scale", "guess_mode"), [(1.0, False), (0.5, False), (0.8, True)])
def test_controlnet_engine_matches_diffusers(built, scale, guess_mode):
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.components import open_component

    _, bundle, nets = built
    net = open_component(open_bundle(bundle), "controlnet_edges", "cpu")
    reference = diffusers.ControlNetModel.from_pretrained(nets[1]).eval()
    sample, hidden, cond = _inputs(net.record.inputs["encoder_hidden_states"].shape[2])
    down, mid = net(sample, 321, hidden, cond, conditioning_scale=scale, guess_mode=guess_mode)
    with torch.no_grad():
        expected = reference(
            torch.from_numpy(sample),
            321,
            torch.from_numpy(hidden),
            torch.from_numpy(cond),
            conditioning_scale=scale,
            guess_mode=guess_mode,
            return_dict=False,
        )
    assert len(down) == len(expected[0])
    for actual, wanted in zip([*down, mid], [*expected[0], expected[1]]):
        _close(actual, wanted)


def test_unet_with_residuals_matches_diffusers_and_adds_zeros_without(built):
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.components import open_component

    model, bundle, nets = built
    opened = open_bundle(bundle)
    unet = open_component(opened, "unet", "cpu")
    net = open_component(opened, "controlnet", "cpu")
    reference = diffusers.UNet2DConditionModel.from_pretrained(model / "unet").eval()
    sample, hidden, cond = _inputs(unet.record.inputs["encoder_hidden_states"].shape[2])
    down, mid = net(sample, 500, hidden, cond)
    actual = unet(
        sample, 500, hidden, down_block_additional_residuals=down, mid_block_additional_residual=mid
    )
    t = {k: torch.from_numpy(v) for k, v in {"sample": sample, "hidden": hidden}.items()}
    with torch.no_grad():
        expected = reference(
            t["sample"],
            500,
            t["hidden"],
            down_block_additional_residuals=tuple(torch.from_numpy(d) for d in down),
            mid_block_additional_residual=torch.from_numpy(mid),
        ).sample
        plain = reference(t["sample"], 500, t["hidden"]).sample
    _close(actual, expected)
    _close(unet(sample, 500, hidden), plain)
    assert np.abs(actual - plain.numpy()).max() > 1e-2  # the residuals matter


def _fails(capsys, model, tmp_path, said, *controlnets):
    out = tmp_path / "out"
    args = [str(model), "-o", str(out), "-q"]
    for net in controlnets:
        args += ["--controlnet", str(net)]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err, err
    assert not out.exists()


def test_controlnets_that_cannot_be_exported_are_refused_before_any_work(built, tmp_path, capsys):
    model, _, nets = built
    config = json.loads((nets[0] / "config.json").read_text())
    wide = tmp_path / "wide"
    wide.mkdir()
    (wide / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 64}))
    for weights in nets[0].glob("*.safetensors"):
        (wide / weights.name).write_bytes(weights.read_bytes())
    _fails(capsys, model, tmp_path, "its cross_attention_dim is 64, the model's UNet has 32", wide)
    (wide / "config.json").write_text(json.dumps({**config, "addition_embed_type": "text_time"}))
    _fails(capsys, model, tmp_path, "its addition_embed_type is text_time, the model's UNet has None", wide)
    (wide / "config.json").write_text(json.dumps({**config, "addition_embed_type": "image"}))
    _fails(capsys, model, tmp_path, "addition_embed_type 'image' is not one sdrt exports", wide)
    _fails(capsys, model, tmp_path, "not a ControlNetModel", model / "unet")
    _fails(capsys, model, tmp_path, "no ", tmp_path / "nowhere")
    single = tmp_path / "canny.safetensors"
    single.write_bytes(b"x")
    _fails(capsys, model, tmp_path, "is a single file", single)
    _fails(capsys, model, tmp_path, "taken twice", f"{nets[0]}:a", f"{nets[1]}:a")
    _fails(capsys, model, tmp_path, "lower-case letters", f"{nets[0]}:Bad-Name")


def test_a_rebuild_takes_every_component_over_and_inspect_names_the_controlnets(built):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.export import export_pipeline
    from sdrt.runtime.bundle.bundle import open_bundle

    model, bundle, nets = built
    report = export_pipeline(
        model,
        bundle,
        min_size=32,
        max_size=128,
        max_batch=2,
        validate=False,
        controlnets=[str(nets[0]), f"{nets[1]}:edges"],
        progress=False,
    )
    assert {c.name: c.status for c in report.components}["controlnet_edges"] == "unchanged"
    assert {c.status for c in report.components} == {"unchanged"}
    text = describe_bundle(open_bundle(bundle))
    assert "-> StableDiffusionControlNetPipeline" in text
    assert f"controlnet   controlnet_edges: {nets[1].resolve()}" in text


def test_controlnets_left_out_by_components_are_refused(model_folders, tmp_path, capsys):
    """The manifest lists every --controlnet: --components unet would leave them without engines."""
    from tests.models import make_controlnet

    model = model_folders("sd1")
    net = make_controlnet(model, tmp_path / "net")
    out = tmp_path / "out"
    code = main([str(model), "-o", str(out), "--controlnet", str(net), "--components", "unet", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "without an engine" in err and "--components unet controlnet" in err, err
    assert not out.exists()
