"""``build-engine --vae``: the bundle runs another VAE exactly as diffusers does with that VAE swapped in."""

from __future__ import annotations

import json

import pytest

from sdrt.cli.build_engine import main
from tests.models import _vae
from tests.parity import BUILD_OPTIONS, PARITY_DB, assert_parity, build_bundle, initial_latents, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"


@pytest.fixture
def other_vae(tmp_path):
    """A VAE of the tiny model's shape with other weights."""
    path = tmp_path / "other-vae"
    vae = _vae(seed=123)
    vae.register_to_config(scaling_factor=0.25)  # and another scaling factor, which the bundle must take
    vae.save_pretrained(path)
    return path


def test_swapped_vae_matches_diffusers_with_that_vae(tiny, tmp_path, other_vae):
    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.bundle.bundle import open_bundle

    model = tiny.model("sd1")
    options = [*BUILD_OPTIONS["sd1"], "--vae", str(other_vae), "--components", "text_encoder", "unet"]
    bundle = build_bundle(model, tmp_path / "bundle", [*options, "vae_decoder"])
    from sdrt.cli.inspect import describe_bundle

    assert open_bundle(bundle).manifest.source.vae == str(other_vae.resolve())
    assert f"vae          {other_vae.resolve()} (build-engine --vae)" in describe_bundle(open_bundle(bundle))
    assert open_bundle(bundle).manifest.vae.scaling_factor == 0.25
    latents = initial_latents((1, 4, 8, 8), seed=3)
    pipe = StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    actual = pipe(PROMPT, latents=latents, num_inference_steps=3, output_type="np").images

    def diffusers_image(**parts):
        ref = diffusers.StableDiffusionPipeline.from_pretrained(model, **parts)
        ref.set_progress_bar_config(disable=True)
        return ref(PROMPT, latents=torch.from_numpy(latents), num_inference_steps=3, output_type="np").images

    assert_parity(actual, diffusers_image(vae=diffusers.AutoencoderKL.from_pretrained(other_vae)))
    assert psnr(actual, diffusers_image()) < PARITY_DB  # the model's own VAE draws another picture


def _fails(capsys, tiny, tmp_path, vae, said, kind="sd1"):
    out = tmp_path / "out"
    code = main([str(tiny.model(kind)), "-o", str(out), "--vae", str(vae), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err, err
    assert not out.exists()


def test_vae_that_cannot_be_swapped_in_is_refused_before_any_work(tiny, tmp_path, other_vae, capsys):
    wide = tmp_path / "wide-vae"
    config = json.loads((other_vae / "config.json").read_text())
    wide.mkdir()
    (wide / "config.json").write_text(json.dumps({**config, "latent_channels": 8}))
    (wide / "diffusion_pytorch_model.safetensors").write_bytes(
        (other_vae / "diffusion_pytorch_model.safetensors").read_bytes()
    )
    _fails(capsys, tiny, tmp_path, wide, "its latent_channels is 8, the model's VAE has 4")
    _fails(capsys, tiny, tmp_path, tmp_path / "nowhere", "no config.json there")
    _fails(capsys, tiny, tmp_path, tiny.model("sd1") / "unet", "not an AutoencoderKL")
    single = tmp_path / "vae.safetensors"
    single.write_bytes(b"x")
    _fails(capsys, tiny, tmp_path, single, "diffusers cannot read it as this model's VAE")
    pickle = tmp_path / "vae.ckpt"
    pickle.write_bytes(b"x")
    _fails(capsys, tiny, tmp_path, pickle, "is a pickle")
    _fails(capsys, tiny, tmp_path, other_vae, "has no VAE", kind="uncond")
    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(config))
    _fails(capsys, tiny, tmp_path, empty, "no weights")


def test_a_model_folder_lends_its_vae(tiny, tmp_path, capsys):
    """A whole model folder as --vae means its vae/ (as people pass another checkpoint's folder)."""
    from sdrt.export.model.folder import inspect_model_folder
    from sdrt.export.model.vae_swap import swap_vae

    folder = swap_vae(inspect_model_folder(tiny.model("sd1")), tiny.model("inpaint"))
    assert folder.part_path("vae") == (tiny.model("inpaint") / "vae").resolve()
    assert folder.weight_files("vae")[0].parent == folder.part_path("vae")


# suite time: the folder VAE swap runs in the default run
@pytest.mark.slow
def test_single_file_vae_matches_diffusers_with_that_vae(tmp_path):
    """``--vae vae.safetensors`` in the original layout (as sd-vae-ft-mse ships, no prefix), read with the
    model's VAE config: the images diffusers gives with the VAE object the file was written from."""
    from safetensors.torch import save_file

    from sdrt.runtime import StableDiffusionPipeline
    from tests.export.single_file import VAE_PREFIX, make_sd_topology, sd_topology_vae, vae_to_original

    model = make_sd_topology(tmp_path / "model")
    vae = sd_topology_vae(seed=7)
    file = tmp_path / "vae-ft.safetensors"
    state = vae_to_original(vae.state_dict())
    save_file({k[len(VAE_PREFIX) :]: v.contiguous() for k, v in state.items()}, str(file))
    options = ["--min-size", "64", "--max-size", "64", "--max-batch", "1", "--vae", str(file)]
    options += ["--components", "text_encoder", "unet", "vae_decoder"]
    bundle = build_bundle(model, tmp_path / "bundle", options)
    latents = initial_latents((1, 4, 8, 8), seed=2)
    pipe = StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    actual = pipe(PROMPT, latents=latents, num_inference_steps=3, output_type="np").images
    ref = diffusers.StableDiffusionPipeline.from_pretrained(model, vae=vae)
    ref.set_progress_bar_config(disable=True)
    expected = ref(PROMPT, latents=torch.from_numpy(latents), num_inference_steps=3, output_type="np").images
    assert_parity(actual, expected)
    own = diffusers.StableDiffusionPipeline.from_pretrained(model)
    own.set_progress_bar_config(disable=True)
    base = own(PROMPT, latents=torch.from_numpy(latents), num_inference_steps=3, output_type="np").images
    assert psnr(actual, base) < PARITY_DB  # the file's VAE, not the model's own


def test_single_file_vae_of_another_architecture_is_refused(tmp_path, capsys):
    """diffusers reads only the blocks the model's config names and drops the rest behind one warning."""
    from safetensors.torch import save_file

    from tests.export.single_file import make_sd_topology, sd_topology_vae, vae_to_original

    model = make_sd_topology(tmp_path / "model")
    vae = sd_topology_vae(seed=7)
    state = vae_to_original(vae.state_dict())
    extra = {k.replace("down.3.", "down.4."): v for k, v in state.items() if ".down.3." in k}  # a 5th level
    file = tmp_path / "other-vae.safetensors"
    save_file({k: v.clone().contiguous() for k, v in {**state, **extra}.items()}, str(file))
    out = tmp_path / "out"
    assert main([str(model), "-o", str(out), "--vae", str(file), "--components", "vae_decoder", "-q"]) == 2
    err = capsys.readouterr().err
    assert "another VAE architecture" in err and str(file) in err and "Traceback" not in err, err
    assert not out.exists()
