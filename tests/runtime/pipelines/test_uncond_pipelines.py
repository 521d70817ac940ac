"""The unconditional family's pipelines (DDIM, PNDM, RePaint, score SDE VE, Karras VE, consistency models) against
diffusers' of the same name on one tiny UNet2DModel, fp32 CPU, seeded alike; the folder's class picks the pipeline.

One bundle: the tiny ``uncond`` UNet at 32 px (RePaint's PIL masks are floored to a multiple of 32), saved as a
``ScoreSdeVePipeline`` folder; the other pipelines load it by class with their own scheduler.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity, build_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def uncond(model_folders, tmp_path_factory):
    """The diffusers UNet, its folder (a ScoreSdeVePipeline) and the bundle built from it."""
    root = tmp_path_factory.mktemp("uncond_pipelines")
    unet = diffusers.UNet2DModel.from_pretrained(model_folders("uncond") / "unet", sample_size=32).eval()
    folder = root / "score_sde_ve"
    diffusers.ScoreSdeVePipeline(unet=unet, scheduler=diffusers.ScoreSdeVeScheduler()).save_pretrained(folder)
    bundle = build_bundle(folder, root / "bundle", ["--max-batch", "2"])
    return SimpleNamespace(unet=unet, folder=folder, bundle=bundle)


def _pair(uncond, name, scheduler):
    """diffusers' pipeline ``name`` over the UNet and ``scheduler``, and sdrt's over the bundle, same config."""
    import sdrt.runtime
    from sdrt.schedulers import get_scheduler_class

    ref = getattr(diffusers, name)(unet=uncond.unet, scheduler=scheduler)
    ref.set_progress_bar_config(disable=True)
    config = {k: v for k, v in ref.scheduler.config.items() if not k.startswith("_")}
    ours = get_scheduler_class(type(ref.scheduler).__name__).from_config(config)
    pipe = getattr(sdrt.runtime, name).from_pretrained(uncond.bundle, provider="cpu", scheduler=ours)
    pipe.set_progress_bar_config(disable=True)
    return ref, pipe


def _seeded(ref, pipe, seed, **kwargs):
    expected = ref(generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs).images
    actual = pipe(generator=seed, output_type="np", **kwargs).images
    return actual, expected


@pytest.mark.parametrize(
    "kwargs",
    [{"num_inference_steps": 5}, {"num_inference_steps": 4, "eta": 0.7, "batch_size": 2}],
    ids=["eta0", "eta-batch"],
)
def test_ddim(uncond, kwargs):
    ref, pipe = _pair(uncond, "DDIMPipeline", diffusers.DDPMScheduler(num_train_timesteps=1000))
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"  # converted, as diffusers does
    assert_parity(*_seeded(ref, pipe, 3, **kwargs))


def test_ddim_clipped_model_output_and_pil(uncond):
    ref, pipe = _pair(uncond, "DDIMPipeline", diffusers.DDIMScheduler(num_train_timesteps=1000))
    kwargs = {"num_inference_steps": 4, "eta": 1.0, "use_clipped_model_output": True}
    expected = ref(generator=torch.Generator().manual_seed(8), **kwargs).images
    assert_parity(pipe(generator=8, **kwargs).images, expected)


def test_pndm(uncond):
    ref, pipe = _pair(uncond, "PNDMPipeline", diffusers.DDPMScheduler(num_train_timesteps=1000))
    assert type(pipe.scheduler).__name__ == "PNDMScheduler"
    assert_parity(*_seeded(ref, pipe, 4, num_inference_steps=6, batch_size=2))


def _repaint_inputs():
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.uniform(0, 1, (32, 32, 3)) * 255).astype(np.uint8))
    mask = np.full((32, 32), 255, np.uint8)
    mask[8:24, 4:20] = 0  # black: inpainted
    return image, Image.fromarray(mask)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_repaint(uncond, eta):
    ref, pipe = _pair(uncond, "RePaintPipeline", diffusers.RePaintScheduler(num_train_timesteps=1000))
    image, mask = _repaint_inputs()
    kwargs = {"num_inference_steps": 8, "eta": eta, "jump_length": 3, "jump_n_sample": 2}
    actual, expected = _seeded(ref, pipe, 5, image=image, mask_image=mask, **kwargs)
    assert_parity(actual, expected)


def test_repaint_refuses_an_image_of_another_size(uncond):
    from sdrt.runtime.errors import InputError

    _, pipe = _pair(uncond, "RePaintPipeline", diffusers.RePaintScheduler(num_train_timesteps=1000))
    image, mask = _repaint_inputs()
    with pytest.raises(InputError, match="32x32"):
        pipe(image.resize((64, 64)), mask.resize((64, 64)), num_inference_steps=2)


def test_score_sde_ve_from_its_folder_class(uncond):
    """The bundle's own pipeline and scheduler: DiffusionPipeline.from_pretrained reads the folder's class."""
    from sdrt.runtime import DiffusionPipeline, ScoreSdeVePipeline

    pipe = DiffusionPipeline.from_pretrained(uncond.bundle, provider="cpu")
    assert type(pipe) is ScoreSdeVePipeline
    assert type(pipe.scheduler).__name__ == "ScoreSdeVeScheduler"
    pipe.set_progress_bar_config(disable=True)
    ref = diffusers.ScoreSdeVePipeline.from_pretrained(uncond.folder)
    ref.set_progress_bar_config(disable=True)
    assert_parity(*_seeded(ref, pipe, 6, num_inference_steps=4, batch_size=2))


def test_score_sde_ve_small_sigmas(uncond):
    scheduler = diffusers.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=1.0, snr=0.05)
    ref, pipe = _pair(uncond, "ScoreSdeVePipeline", scheduler)
    assert_parity(*_seeded(ref, pipe, 7, num_inference_steps=5))


@pytest.mark.parametrize("sigma", [0.01, 1.0, 674.0, 1348.0, -1553.0])
def test_unet_takes_float_noise_levels(uncond, sigma):
    """The UNet's timestep input as the exploding pipelines feed it: sigma (score SDE VE), sigma / 2 (Karras VE),
    250 log sigma (consistency models: negative below sigma 1)."""
    from sdrt.runtime import ScoreSdeVePipeline

    pipe = ScoreSdeVePipeline.from_pretrained(uncond.bundle, provider="cpu")
    sample = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = uncond.unet(torch.from_numpy(sample), torch.tensor([sigma, sigma])).sample.numpy()
    actual = pipe.unet(sample, np.float32(sigma))
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-3 * float(np.abs(expected).max()))


@pytest.mark.parametrize("config", [{}, {"sigma_min": 0.02, "sigma_max": 2.0}], ids=["default", "small"])
def test_karras_ve(uncond, config):
    ref, pipe = _pair(uncond, "KarrasVePipeline", diffusers.KarrasVeScheduler(**config))
    assert_parity(*_seeded(ref, pipe, 9, num_inference_steps=4, batch_size=2))


@pytest.mark.parametrize(
    "kwargs",
    [{"num_inference_steps": 1}, {"num_inference_steps": 3, "batch_size": 2}, {"timesteps": [22, 0]}],
    ids=["one-step", "multistep", "custom-timesteps"],
)
def test_consistency_models(uncond, kwargs):
    scheduler = diffusers.CMStochasticIterativeScheduler(
        num_train_timesteps=40, sigma_min=0.002, sigma_max=80.0
    )
    ref, pipe = _pair(uncond, "ConsistencyModelPipeline", scheduler)
    assert_parity(*_seeded(ref, pipe, 10, **kwargs))


def test_consistency_models_latents(uncond):
    ref, pipe = _pair(uncond, "ConsistencyModelPipeline", diffusers.CMStochasticIterativeScheduler())
    latents = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    kwargs = {"num_inference_steps": 2, "output_type": "np"}
    expected = ref(
        latents=torch.from_numpy(latents), generator=torch.Generator().manual_seed(3), **kwargs
    ).images
    assert_parity(pipe(latents=latents, generator=3, **kwargs).images, expected)


@pytest.mark.parametrize(
    ("folder_class", "name"),
    [
        ("DDPMPipeline", "DDPMPipeline"),
        ("DDIMPipeline", "DDIMPipeline"),
        ("PNDMPipeline", "PNDMPipeline"),
        ("RePaintPipeline", "RePaintPipeline"),
        ("ScoreSdeVePipeline", "ScoreSdeVePipeline"),
        ("KarrasVePipeline", "KarrasVePipeline"),
        ("ConsistencyModelPipeline", "ConsistencyModelPipeline"),
    ],
)
def test_the_folder_class_names_the_pipeline(folder_class, name):
    from sdrt.runtime.pipelines.auto import pipeline_class_for

    manifest = SimpleNamespace(pipeline_class=folder_class, controlnets={}, adapters={})
    bundle = SimpleNamespace(model_type="uncond", manifest=manifest, path="engines/x")
    assert pipeline_class_for(bundle).__name__ == name


def test_generate_runs_the_folder_pipeline_and_refuses_a_prompt(uncond, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    out = tmp_path / "sde.png"
    args = ["generate", str(uncond.bundle), "--steps", "2", "--seed", "1", "--no-progress", "-o", str(out)]
    capsys.readouterr()
    assert main(args) == 0
    ref = diffusers.ScoreSdeVePipeline.from_pretrained(uncond.folder)
    ref.set_progress_bar_config(disable=True)
    expected = ref(num_inference_steps=2, generator=torch.Generator().manual_seed(1)).images
    assert_parity([Image.open(out)], expected)
    for extra, said in (
        (["a photo of a cat"], "takes no prompt"),
        (["--negative-prompt", "blue"], "--negative-prompt"),
        (["--image", str(out)], "unconditional"),
    ):
        capsys.readouterr()
        assert main([*args[:2], *extra, *args[2:]]) == 2, extra
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, (extra, err)


def test_generate_repaint_needs_image_and_mask(tmp_path):
    from sdrt.cli.task_choice import ImageInputs, chosen_task, default_steps
    from sdrt.runtime.errors import InputError

    image, mask = tmp_path / "a.png", tmp_path / "m.png"
    assert chosen_task("uncond", ImageInputs(image, mask), folder_class="RePaintPipeline") == "repaint"
    with pytest.raises(InputError, match="pass --image .* and --mask"):
        chosen_task("uncond", ImageInputs(image), folder_class="RePaintPipeline")
    with pytest.raises(InputError, match="unconditional models"):
        chosen_task("uncond", ImageInputs(image, mask), folder_class="DDIMPipeline")
    assert default_steps("uncond", "RePaintPipeline") == 250
    assert default_steps("uncond", "ScoreSdeVePipeline") == 2000
    assert default_steps("uncond", "DDPMPipeline") == 1000


def test_build_refuses_a_class_conditional_unet_no_pipeline_feeds(uncond, tmp_path, capsys):
    """diffusers' DDPMPipeline passes no class labels (its UNet would fail): class ids reach consistency models only."""
    from sdrt.cli.build_engine import main as build_engine

    config = dict(uncond.unet.config)
    unet = diffusers.UNet2DModel.from_config({**config, "num_class_embeds": 10})
    folder = tmp_path / "ddpm_classes"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler()).save_pretrained(folder)
    capsys.readouterr()
    assert build_engine([str(folder), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "class-conditional UNet2DModel" in err and "ConsistencyModelPipeline" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def class_conditional(tmp_path_factory):
    """A tiny class-conditional UNet2DModel (10 classes) saved as a ConsistencyModelPipeline folder, and its bundle."""
    root = tmp_path_factory.mktemp("cm_classes")
    torch.manual_seed(5)
    unet = diffusers.UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=8,
        num_class_embeds=10,
    ).eval()
    scheduler = diffusers.CMStochasticIterativeScheduler(
        num_train_timesteps=40, sigma_min=0.002, sigma_max=80.0
    )
    folder = root / "cm"
    diffusers.ConsistencyModelPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)
    bundle = build_bundle(folder, root / "bundle", ["--max-batch", "2"])
    return SimpleNamespace(unet=unet, scheduler=scheduler, bundle=bundle)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_inference_steps": 1, "class_labels": 3},
        {"timesteps": [22, 0], "batch_size": 2, "class_labels": [3, 7]},
    ],
    ids=["one-step", "multistep-batch"],
)
def test_class_conditional_consistency_models(class_conditional, kwargs):
    import sdrt.runtime

    ref = diffusers.ConsistencyModelPipeline(
        unet=class_conditional.unet, scheduler=class_conditional.scheduler
    )
    ref.set_progress_bar_config(disable=True)
    pipe = sdrt.runtime.ConsistencyModelPipeline.from_pretrained(class_conditional.bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    actual, expected = _seeded(ref, pipe, 10, **kwargs)
    assert_parity(actual, expected)
    other = pipe(
        generator=10,
        output_type="np",
        **{**kwargs, "class_labels": 5 if kwargs.get("batch_size") is None else [5, 5]},
    )
    assert np.abs(other.images - actual).max() > 0.05, "the class label conditions the image"


def test_class_conditional_labels_checked(class_conditional):
    import sdrt.runtime
    from sdrt.runtime.errors import InputError

    pipe = sdrt.runtime.ConsistencyModelPipeline.from_pretrained(class_conditional.bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(InputError, match=r"classes are 0\.\.9"):
        pipe(class_labels=10)
    with pytest.raises(InputError, match="one id per image"):
        pipe(class_labels=1, batch_size=2)
    drawn = [pipe(generator=4, output_type="np").images for _ in range(2)]
    np.testing.assert_array_equal(*drawn)  # labels drawn from an int seed are the seed's


def test_generate_class_labels_of_a_consistency_model(class_conditional, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    ref = diffusers.ConsistencyModelPipeline(
        unet=class_conditional.unet, scheduler=class_conditional.scheduler
    )
    ref.set_progress_bar_config(disable=True)
    flags = ["--class-label", "3", "--class-label", "7", "--steps", "2", "--seed", "10", "--no-progress"]
    assert main(["generate", str(class_conditional.bundle), *flags, "-o", str(tmp_path / "cm.png")]) == 0
    expected = ref(
        batch_size=2, class_labels=[3, 7], num_inference_steps=2, generator=torch.Generator().manual_seed(10)
    ).images
    assert_parity([Image.open(tmp_path / f"cm-{i}.png") for i in range(2)], expected)
    capsys.readouterr()
    assert (
        main(
            ["generate", str(class_conditional.bundle), "--class-label", "cat", "-o", str(tmp_path / "x.png")]
        )
        != 0
    )
    assert "ids 0..9" in capsys.readouterr().err
