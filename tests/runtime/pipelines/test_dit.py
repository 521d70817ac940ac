"""DiTPipeline against diffusers' on one tiny DiT folder (a DiTTransformer2DModel learning sigma, a 2-block
AutoencoderKL, ``id2label`` in model_index.json as the hub's DiT folders have it), fp32 CPU, seeded alike."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from PIL import Image

from tests.parity import assert_parity, build_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

ID2LABEL = {"0": "tench, Tinca tinca", "1": "goldfish, Carassius auratus", "207": "golden retriever"}


@pytest.fixture(scope="module")
def dit(tmp_path_factory):
    root = tmp_path_factory.mktemp("dit")
    torch.manual_seed(0)
    transformer = diffusers.DiTTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,  # learned sigma: epsilon and the variance
        num_layers=2,
        sample_size=8,
        patch_size=2,
        norm_num_groups=8,
    )
    vae = diffusers.AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    )
    folder = root / "dit"
    diffusers.DiTPipeline(transformer, vae, diffusers.DDIMScheduler()).save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "id2label": ID2LABEL}))
    options = ["--max-batch", "2", "--components", "transformer", "vae_decoder"]
    return SimpleNamespace(folder=folder, bundle=build_bundle(folder, root / "bundle", options))


def _pipes(dit, scheduler=None):
    from sdrt.runtime import DiffusionPipeline, DiTPipeline
    from sdrt.schedulers import get_scheduler_class

    ref = diffusers.DiTPipeline.from_pretrained(dit.folder)
    if scheduler is not None:
        ref.scheduler = getattr(diffusers, scheduler).from_config(ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    pipe = DiffusionPipeline.from_pretrained(dit.bundle, provider="cpu")
    assert type(pipe) is DiTPipeline
    pipe.scheduler = get_scheduler_class(type(ref.scheduler).__name__).from_config(ref.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return ref, pipe


@pytest.mark.parametrize(
    ("scheduler", "guidance_scale"),
    [(None, 4.0), (None, 1.0), ("DPMSolverMultistepScheduler", 1.5)],
    ids=["ddim-guided", "ddim-unguided", "dpm++-guided"],
)
def test_dit_matches_diffusers(dit, scheduler, guidance_scale):
    ref, pipe = _pipes(dit, scheduler)
    kwargs = {"class_labels": [207, 1], "guidance_scale": guidance_scale, "num_inference_steps": 4}
    expected = ref(generator=torch.Generator().manual_seed(3), output_type="np", **kwargs).images
    assert_parity(pipe(generator=3, output_type="np", **kwargs).images, expected)


def test_labels_as_diffusers(dit):
    ref, pipe = _pipes(dit)
    assert pipe.labels == ref.labels
    assert pipe.get_label_ids(["golden retriever", "tench", "Carassius auratus"]) == ref.get_label_ids(
        ["golden retriever", "tench", "Carassius auratus"]
    )


def test_unknown_class_name_lists_near_matches(dit):
    from sdrt.runtime.errors import InputError

    _, pipe = _pipes(dit)
    with pytest.raises(InputError, match="'golden retriever'"):
        pipe.get_label_ids(["golden retreiver"])
    with pytest.raises(InputError, match="golden_retriever"):
        pipe(class_labels=["golden_retriever"], num_inference_steps=1)


def test_generate_takes_class_labels(dit, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    out = tmp_path / "dog.png"
    args = ["generate", str(dit.bundle), "--steps", "3", "--seed", "2", "--no-progress", "-o", str(out)]
    assert main([*args, "--class-label", "golden retriever", "--guidance", "3"]) == 0
    ref = diffusers.DiTPipeline.from_pretrained(dit.folder)
    ref.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(2)
    expected = ref([207], guidance_scale=3.0, num_inference_steps=3, generator=generator).images
    assert_parity([Image.open(out)], expected)
    for extra, said in (
        (["--class-label", "golden retreiver"], "near matches: 'golden retriever'"),
        (["--class-label", "1"], "takes no prompt"),
        ([], "pass --class-label"),
    ):
        prompt = ["a photo of a dog"] if "prompt" in said else []
        capsys.readouterr()
        assert main([*args[:2], *prompt, *args[2:], *extra]) == 2, extra
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, (extra, err)
