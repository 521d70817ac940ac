"""``build-engine FILE.safetensors``: an original-layout SD 1.x checkpoint (written here from a tiny model with
SD's block topology) builds a bundle whose images match the diffusers-folder build and diffusers'
``from_single_file``; bad checkpoints are one clear error each, with any bundle left as it was."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import types

import pytest
from safetensors.torch import load_file

from sdrt.cli.build_engine import main
from tests.export.single_file import make_sd_topology, make_sdxl_topology, write_single_file
from tests.models import make_depth, make_sd1
from tests.parity import PSNR_DB, assert_parity, build_bundle, initial_latents

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
OPTIONS = ["--min-size", "64", "--max-size", "64", "--max-batch", "1"]
PARTS = ["--components", "text_encoder", "unet", "vae_decoder"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(the tiny diffusers folder, the same model as an original-layout .safetensors file)."""
    root = tmp_path_factory.mktemp("single-file")
    folder = make_sd_topology(root / "model", seed=4)
    return folder, write_single_file(folder, root / "tiny-sd1.safetensors")


@pytest.fixture(scope="module")
def bundle(checkpoint, tmp_path_factory):
    folder, file = checkpoint
    out = tmp_path_factory.mktemp("single-file-bundle") / "bundle"
    return build_bundle(file, out, [*OPTIONS, *PARTS, "--config", str(folder)])


def _state(pipe, part):
    return getattr(pipe, part).state_dict()


def test_written_checkpoint_loads_back_in_diffusers_with_the_folders_weights(checkpoint):
    folder, file = checkpoint
    keys = set(load_file(str(file)))
    assert any(k.startswith("model.diffusion_model.output_blocks.11.") for k in keys)
    assert any(k.startswith("first_stage_model.decoder.up.3.block.2.") for k in keys)
    assert "cond_stage_model.transformer.text_model.final_layer_norm.weight" in keys
    ours = diffusers.StableDiffusionPipeline.from_pretrained(folder)
    loaded = diffusers.StableDiffusionPipeline.from_single_file(
        str(file), config=str(folder), local_files_only=True
    )
    for part in ("unet", "vae", "text_encoder"):
        expected, actual = _state(ours, part), _state(loaded, part)
        assert expected.keys() == actual.keys(), part
        for key, value in expected.items():
            assert torch.equal(value, actual[key].reshape(value.shape)), f"{part}.{key}"


def _images(pipe, latents, *, torch_pipe=False):
    pipe.set_progress_bar_config(disable=True)
    given = torch.from_numpy(latents) if torch_pipe else latents
    return pipe(PROMPT, latents=given, num_inference_steps=3, output_type="np").images


def test_single_file_bundle_matches_the_folder_bundle_and_diffusers(checkpoint, bundle, tmp_path):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.bundle.bundle import open_bundle

    folder, file = checkpoint
    source = open_bundle(bundle).manifest.source
    assert source.path == str(file.resolve())
    record = source.checkpoint
    assert record["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert (record["bytes"], record["config"]) == (file.stat().st_size, str(folder.resolve()))
    assert f"sha256 {record['sha256']}, read with --config {folder.resolve()}" in describe_bundle(
        open_bundle(bundle)
    )
    folder_bundle = build_bundle(folder, tmp_path / "folder-bundle", [*OPTIONS, *PARTS])
    latents = initial_latents((1, 4, 8, 8), seed=11)
    actual = _images(StableDiffusionPipeline.from_pretrained(bundle, provider="cpu"), latents)
    from_folder = _images(StableDiffusionPipeline.from_pretrained(folder_bundle, provider="cpu"), latents)
    reference = diffusers.StableDiffusionPipeline.from_single_file(
        str(file), config=str(folder), local_files_only=True
    )
    expected = _images(reference, latents, torch_pipe=True)
    assert_parity(actual, from_folder, threshold=PSNR_DB)
    assert_parity(actual, expected, threshold=PSNR_DB)


def test_a_pickle_converts_only_when_allowed(checkpoint, tmp_path):
    """A1111-era .ckpt files hold more than tensors (a step count, a callbacks object of a library not
    installed here, which torch's weights_only loading diffusers uses refuses); with --allow-pickle they are
    unpickled, the missing class read as a stand-in, and their tensors taken."""
    from sdrt.export.errors import CheckpointError
    from sdrt.export.model.single_file import checkpoint_as_folder

    folder, file = checkpoint
    ckpt = tmp_path / "tiny-sd1.ckpt"
    with _module_not_installed_later("pytorch_lightning.callbacks") as module:
        callbacks = module.ModelCheckpoint()
        torch.save({"global_step": 7, "callbacks": callbacks, "state_dict": load_file(str(file))}, ckpt)
    with pytest.raises(CheckpointError, match="is a pickle .* pass --allow-pickle"):
        with checkpoint_as_folder(ckpt, config=folder):
            pass
    with checkpoint_as_folder(ckpt, config=folder, allow_pickle=True) as (converted, record):
        unet = diffusers.UNet2DConditionModel.from_pretrained(converted / "unet")
        expected = diffusers.UNet2DConditionModel.from_pretrained(folder / "unet").state_dict()
        assert all(torch.equal(v, unet.state_dict()[k]) for k, v in expected.items())
        assert (record.path, record.bytes) == (ckpt.resolve(), ckpt.stat().st_size)
    assert not converted.exists()  # the scratch folder goes with the build
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot be unpickled"):
        with checkpoint_as_folder(truncated, config=folder, allow_pickle=True):
            pass


def test_an_inpainting_checkpoint_converts_with_an_inpainting_config(tmp_path):
    """The pipeline class comes from --config: a 9-channel UNet as StableDiffusionInpaintPipeline."""
    from sdrt.export.model.folder import inspect_model_folder
    from sdrt.export.model.single_file import checkpoint_as_folder
    from sdrt.export.model.single_file_load import inferred_model_type

    folder = make_sd_topology(tmp_path / "inpaint", "inpaint", seed=9)
    file = write_single_file(folder, tmp_path / "tiny-inpaint.safetensors")
    assert inferred_model_type(file)[0] == "inpainting"
    killed, running = (
        tmp_path / ".sdrt-checkpoint-999999999-x",
        tmp_path / f".sdrt-checkpoint-{os.getpid()}-y",
    )
    killed.mkdir(), running.mkdir()
    with checkpoint_as_folder(file, config=folder, scratch_dir=tmp_path) as (converted, _):
        assert converted.parent.parent == tmp_path  # beside the bundle
        assert (
            not killed.exists() and running.exists()
        )  # what a killed build left goes, a running one's stays
        assert inspect_model_folder(converted).model_type == "inpaint"
        unet = diffusers.UNet2DConditionModel.from_pretrained(converted / "unet").state_dict()
        expected = diffusers.UNet2DConditionModel.from_pretrained(folder / "unet").state_dict()
        assert all(torch.equal(v, unet[k]) for k, v in expected.items())


def test_a_checkpoint_without_a_vae_takes_the_one_vae_names(checkpoint, tmp_path, capsys):
    from safetensors.torch import save_file

    from sdrt.export.model.single_file import checkpoint_as_folder
    from tests.export.single_file import sd_topology_vae

    folder, file = checkpoint
    no_vae = tmp_path / "no-vae.safetensors"
    save_file(
        {k: v for k, v in load_file(str(file)).items() if not k.startswith("first_stage_model.")}, str(no_vae)
    )
    _fails(capsys, no_vae, tmp_path / "out", "a file without a VAE needs --vae", "--config", str(folder))
    assert not (tmp_path / "out").exists()
    other = tmp_path / "other-vae"
    sd_topology_vae(seed=21).save_pretrained(other)
    with checkpoint_as_folder(no_vae, config=folder, vae=other) as (converted, _):
        vae = diffusers.AutoencoderKL.from_pretrained(converted / "vae").state_dict()
        expected = diffusers.AutoencoderKL.from_pretrained(other).state_dict()
        assert all(torch.equal(v, vae[k]) for k, v in expected.items())


def test_an_fp16_checkpoint_is_saved_in_fp16_and_read_back_exactly(checkpoint, tmp_path):
    """Most published checkpoints are fp16: the scratch folder keeps that (half the disk of fp32), and the
    build's fp32 read of it gives the file's values."""
    from safetensors.torch import save_file

    from sdrt.export.model.folder import inspect_model_folder, load_part
    from sdrt.export.model.single_file import checkpoint_as_folder

    folder, file = checkpoint
    half = tmp_path / "fp16.safetensors"
    save_file({k: v.half() for k, v in load_file(str(file)).items()}, str(half))
    with checkpoint_as_folder(half, config=folder) as (converted, _):
        for weights in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
            assert {v.dtype for v in load_file(str(converted / weights)).values()} == {torch.float16}, weights
        model = inspect_model_folder(converted)
        for part in ("unet", "vae", "text_encoder"):
            read = load_part(model, part).state_dict()
            expected = load_part(inspect_model_folder(folder), part).state_dict()
            for key, value in expected.items():
                if value.is_floating_point():
                    assert read[key].dtype == torch.float32, key
                    assert torch.equal(read[key], value.half().float()), f"{part}.{key}"


@contextlib.contextmanager
def _module_not_installed_later(name):
    """A module that exists while a checkpoint pickles one of its objects, and is gone when it is read (as
    PyTorch Lightning is where sdrt runs)."""
    module = types.ModuleType(name)

    class ModelCheckpoint:
        def __init__(self):
            self.monitor = "val/loss"

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = name, "ModelCheckpoint"
    module.ModelCheckpoint = ModelCheckpoint
    parent = types.ModuleType(name.split(".")[0])
    sys.modules[parent.__name__], sys.modules[name] = parent, module
    try:
        yield module
    finally:
        del sys.modules[name], sys.modules[parent.__name__]


def test_the_inferred_config_is_the_local_hub_caches_else_the_shipped_one(
    checkpoint, tmp_path, monkeypatch, capsys
):
    import huggingface_hub.constants

    from sdrt.export.errors import CheckpointError
    from sdrt.export.model.shipped_configs import shipped_config
    from sdrt.export.model.single_file_load import checkpoint_config

    folder, file = checkpoint
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("SDRT_CACHE_DIR", str(tmp_path / "sdrt-cache"))
    assert checkpoint_config(file, None) == shipped_config("sd15")  # not cached: the configuration sdrt ships
    _fails(
        capsys, file, tmp_path / "out", "does not match"
    )  # a tiny model is no real SD 1.5: before any work
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr("sdrt.export.model.single_file_load.BY_DIFFUSERS_TYPE", {})
    with pytest.raises(
        CheckpointError, match="infers a 'v1' checkpoint.*stable-diffusion-v1-5.*pass --config"
    ):
        checkpoint_config(file, None)
    repo = tmp_path / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot, ignore=shutil.ignore_patterns("*.safetensors"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    assert checkpoint_config(file, None) == snapshot


def test_no_room_for_the_converted_folder_is_one_line(checkpoint, tmp_path, capsys, monkeypatch):
    import diffusers
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "save_pretrained", full)
    folder, file = checkpoint
    _fails(capsys, file, tmp_path / "out", "No space left on device", "--config", str(folder))
    assert not (tmp_path / "out").exists()


def _fails(capsys, model, out, said, *options):
    code = main([str(model), "-o", str(out), *OPTIONS, "-q", *options])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "build-engine: error:" in line]) == 1, err


def test_bad_checkpoints_are_clear_errors_and_leave_the_bundle_untouched(
    checkpoint, bundle, tmp_path, capsys
):
    from safetensors.torch import save_file

    folder, file = checkpoint
    config = ["--config", str(folder)]
    before = (bundle / "manifest.json").read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    _fails(capsys, truncated, bundle, "is damaged or truncated", *config)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not read")
    _fails(capsys, ckpt, bundle, "is a pickle (.ckpt): loading one runs any code it holds", *config)
    other = folder.parent / "other-model"
    if not other.exists():
        make_sd1(other)  # SD 1.x with 2 levels of 1 layer: the checkpoint's UNet and VAE do not fit
    _fails(capsys, file, bundle, f"does not match --config {other}", "--config", str(other))
    lora = tmp_path / "lora.safetensors"
    save_file(
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 16)}, str(lora)
    )
    _fails(capsys, lora, bundle, "is not a whole Stable Diffusion checkpoint in the original layout", *config)
    state = load_file(str(file))
    del state["model.diffusion_model.middle_block.1.proj_in.weight"]
    state["model.diffusion_model.out.2.weight"] = state["model.diffusion_model.out.2.weight"][:2]
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    _fails(
        capsys,
        broken,
        bundle,
        "unet: 1 weights missing from the file (e.g. mid_block.attentions.0.proj_in",
        *config,
    )
    _fails(capsys, file, bundle, "--config", "--config", str(tmp_path))
    depth = make_depth(tmp_path / "depth")  # a pipeline diffusers reads no single file as
    _fails(
        capsys,
        file,
        bundle,
        "no single-file loader for its pipeline 'StableDiffusionDepth2ImgPipeline'",
        "--config",
        str(depth),
    )
    _fails(capsys, folder, bundle, "it is for single-file checkpoints", *config)
    assert (bundle / "manifest.json").read_bytes() == before
    assert json.loads(before)["source"]["checkpoint"]["sha256"]
    assert not list(bundle.parent.glob(".sdrt-checkpoint-*"))


def test_a_damaged_single_file_bundle_names_the_command_that_rebuilds_it(checkpoint, bundle, tmp_path):
    from sdrt.cli.inspect import verify_bundle
    from sdrt.runtime.bundle.bundle import open_bundle
    from sdrt.runtime.errors import BundleError

    folder, file = checkpoint
    damaged = shutil.copytree(bundle, tmp_path / "damaged")
    with (damaged / "onnx" / "unet.onnx").open("ab") as graph:
        graph.write(b"x")
    with pytest.raises(
        BundleError, match=f"build-engine {file.resolve()} -o {damaged} --config {folder.resolve()}"
    ):
        verify_bundle(open_bundle(damaged))


# suite time: the SD 1.x checkpoint test runs the same reader in the default run
@pytest.mark.slow
def test_sd2_v_prediction_checkpoint_matches_diffusers(checkpoint, tmp_path, capsys):
    """SD 2.x: OpenCLIP's text encoder layout (stacked q/k/v), linear projections, v-prediction."""
    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.bundle.bundle import open_bundle

    folder = make_sd_topology(tmp_path / "sd2", "sd2", seed=6)
    file = write_single_file(folder, tmp_path / "tiny-sd2.safetensors", "sd2")
    assert "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight" in load_file(str(file))
    bundle = build_bundle(file, tmp_path / "bundle", [*OPTIONS, *PARTS, "--config", str(folder)])
    manifest = open_bundle(bundle).manifest
    assert (manifest.model_type, manifest.prediction_type) == ("sd2", "v_prediction")
    latents = initial_latents((1, 4, 8, 8), seed=12)
    actual = _images(StableDiffusionPipeline.from_pretrained(bundle, provider="cpu"), latents)
    loaded = diffusers.StableDiffusionPipeline.from_single_file(
        str(file), config=str(folder), local_files_only=True
    )
    assert_parity(actual, _images(loaded, latents, torch_pipe=True), threshold=PSNR_DB)
    from_folder = diffusers.StableDiffusionPipeline.from_pretrained(folder)
    assert_parity(actual, _images(from_folder, latents, torch_pipe=True), threshold=PSNR_DB)
    sd1_file = checkpoint[1]  # an SD 1.x file read as SD 2: its convolutions where SD 2 has linear layers
    _fails(capsys, sd1_file, tmp_path / "out", "unet: 32 weights of another shape", "--config", str(folder))
    assert not (tmp_path / "out").exists()


# suite time: the SD 1.x checkpoint test runs the same reader in the default run
@pytest.mark.slow
def test_sdxl_checkpoint_matches_diffusers(checkpoint, tmp_path, capsys):
    """SDXL: two text encoders (``conditioner.embedders.0`` OpenAI CLIP, ``.1`` OpenCLIP with projection),
    the text_time embedding (``label_emb``), 3 levels with attention in the last 2."""
    from sdrt.runtime import StableDiffusionXLPipeline
    from sdrt.runtime.bundle.bundle import open_bundle

    folder = make_sdxl_topology(tmp_path / "sdxl", seed=8)
    file = write_single_file(folder, tmp_path / "tiny-sdxl.safetensors", "sdxl")
    assert "model.diffusion_model.label_emb.0.2.weight" in load_file(str(file))
    parts = [*PARTS, "text_encoder_2"]
    bundle = build_bundle(file, tmp_path / "bundle", [*OPTIONS, *parts, "--config", str(folder)])
    assert open_bundle(bundle).manifest.model_type == "sdxl"
    latents = initial_latents((1, 4, 8, 8), seed=13)
    actual = _images(StableDiffusionXLPipeline.from_pretrained(bundle, provider="cpu"), latents)
    loaded = diffusers.StableDiffusionXLPipeline.from_single_file(
        str(file), config=str(folder), local_files_only=True
    )
    assert_parity(actual, _images(loaded, latents, torch_pipe=True), threshold=PSNR_DB)
    from_folder = diffusers.StableDiffusionXLPipeline.from_pretrained(folder)
    assert_parity(actual, _images(from_folder, latents, torch_pipe=True), threshold=PSNR_DB)
    sd1_file = checkpoint[1]  # an SD 1.x file read as SDXL: no text_time embedding, one text encoder
    _fails(
        capsys,
        sd1_file,
        tmp_path / "out",
        "unet: the file has no 'label_emb.0.0.weight'",
        "--config",
        str(folder),
    )
    assert not (tmp_path / "out").exists()
