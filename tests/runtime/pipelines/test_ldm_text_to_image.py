"""LDMTextToImagePipeline against diffusers' on a tiny folder (LDMBert, BERT's tokenizer, a UNet2DConditionModel,
an AutoencoderKL as ``vqvae``), fp32 CPU, seeded alike; the BERT tokenizer (``tokenizers``, no transformers) against
transformers'."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from tests.parity import assert_parity, build_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "cat", "dog", "red", "blue", "in"]
VOCAB += ["the", "snow", "##s", ",", ".", "cafe"]
PROMPTS = ["A photo of a red cat, in the snow", "Blue dogs in a café."]


@pytest.fixture(scope="module")
def ldm_text(tmp_path_factory):
    from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertConfig, LDMBertModel

    root = tmp_path_factory.mktemp("ldm_text")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tokenizer = transformers.BertTokenizer(str(root / "vocab.txt"), model_max_length=77)
    torch.manual_seed(0)
    config = LDMBertConfig(
        vocab_size=len(VOCAB),
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        head_dim=16,
        encoder_ffn_dim=64,
        max_position_embeddings=77,
    )
    vqvae = diffusers.AutoencoderKL(  # 4 blocks: diffusers' loop sizes the latents as height // 8
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    folder = root / "ldm_text"
    diffusers.LDMTextToImagePipeline(
        vqvae=vqvae,
        bert=LDMBertModel(config),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=diffusers.DDIMScheduler(),
    ).save_pretrained(folder)
    options = ["--max-batch", "2", "--min-size", "64", "--max-size", "64"]
    return SimpleNamespace(folder=folder, bundle=build_bundle(folder, root / "bundle", options))


@pytest.fixture(scope="module")
def pipes(ldm_text):
    from sdrt.runtime import DiffusionPipeline, LDMTextToImagePipeline

    ref = diffusers.LDMTextToImagePipeline.from_pretrained(ldm_text.folder)
    ref.set_progress_bar_config(disable=True)
    pipe = DiffusionPipeline.from_pretrained(ldm_text.bundle, provider="cpu")
    assert type(pipe) is LDMTextToImagePipeline
    pipe.set_progress_bar_config(disable=True)
    return ref, pipe


def test_bert_tokenizer_matches_transformers(pipes):
    ref, pipe = pipes
    for texts in (PROMPTS, ["", "cats " * 100]):
        expected = ref.tokenizer(texts, padding="max_length", max_length=77, truncation=True).input_ids
        actual = pipe.tokenizer(
            texts, padding="max_length", max_length=77, truncation=True, return_tensors="np"
        )
        assert actual.input_ids.tolist() == expected


@pytest.mark.parametrize(
    ("scheduler", "guidance_scale", "eta"),
    [("DDIMScheduler", 1.0, 0.0), ("DDIMScheduler", 6.0, 0.0), ("PNDMScheduler", 3.0, 0.0)],
    ids=["ddim", "ddim-guided", "pndm-guided"],
)
def test_matches_diffusers(pipes, scheduler, guidance_scale, eta):
    from sdrt.schedulers import get_scheduler_class

    ref, pipe = pipes
    ref.scheduler = getattr(diffusers, scheduler).from_config(diffusers.DDIMScheduler().config)
    pipe.scheduler = get_scheduler_class(scheduler).from_config(ref.scheduler.config)
    kwargs = {"num_inference_steps": 4, "guidance_scale": guidance_scale, "eta": eta, "output_type": "np"}
    expected = ref(PROMPTS, generator=torch.Generator().manual_seed(4), **kwargs).images
    assert_parity(pipe(PROMPTS, generator=4, **kwargs).images, expected)


def test_generate_with_a_prompt(ldm_text, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    out = tmp_path / "cat.png"
    args = ["generate", str(ldm_text.bundle), PROMPTS[0], "--steps", "3", "--seed", "1", "--no-progress"]
    assert main([*args, "--guidance", "2", "-o", str(out)]) == 0
    ref = diffusers.LDMTextToImagePipeline.from_pretrained(ldm_text.folder)
    ref.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(1)
    expected = ref(PROMPTS[0], guidance_scale=2.0, num_inference_steps=3, generator=generator).images
    assert_parity([Image.open(out)], expected)
    capsys.readouterr()
    assert main([*args, "-n", "blurry", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "takes no negative prompt" in err and "Traceback" not in err
