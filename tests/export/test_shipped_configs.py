"""The configurations build-engine ships for single-file checkpoints (``--config sd15|sd2|sd2-base|sdxl``):
the models they describe have the published parameter counts, an original-layout checkpoint of their shapes
is the model type diffusers infers and fills them with no missing, unexpected or reshaped weight, and the
tokenizer is CLIP's (the published token ids)."""

from __future__ import annotations

import json
import types

import pytest

from sdrt.export.model.shipped_configs import SHIPPED, shipped_config
from sdrt.export.model.single_file_load import key_problems

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

# parameters of the released models: UNet, VAE, text encoder(s)
PUBLISHED = {
    "sd15": (859_520_964, 83_653_863, 123_060_480),
    "sd2": (865_910_724, 83_653_863, 340_387_840),
    "sd2-base": (865_910_724, 83_653_863, 340_387_840),
    "sdxl": (2_567_463_684, 83_653_863, 123_060_480, 694_659_840),
}
DIFFUSERS_TYPE = {"sd15": "v1", "sd2": "v2", "sd2-base": "v2", "sdxl": "xl_base"}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SDRT_CACHE_DIR", str(tmp_path / "cache"))


def _meta_pipe(folder):
    def load(part, cls):
        config = json.loads((folder / part / "config.json").read_text())
        if issubclass(cls, transformers.PreTrainedModel):
            return cls(transformers.CLIPTextConfig(**config))
        return cls.from_config(config)

    with torch.device("meta"):
        parts = {
            "unet": load("unet", diffusers.UNet2DConditionModel),
            "vae": load("vae", diffusers.AutoencoderKL),
            "text_encoder": load("text_encoder", transformers.CLIPTextModel),
        }
        if (folder / "text_encoder_2").is_dir():
            parts["text_encoder_2"] = load("text_encoder_2", transformers.CLIPTextModelWithProjection)
    return types.SimpleNamespace(**parts)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_configuration_describes_the_released_model(name):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    from tests.export.single_file import original_state

    folder = shipped_config(name)
    pipe = _meta_pipe(folder)
    counts = [sum(p.numel() for p in getattr(pipe, part).parameters()) for part in vars(pipe)]
    assert tuple(counts) == PUBLISHED[name]
    checkpoint = original_state(pipe, {"sd15": "sd1", "sd2-base": "sd2"}.get(name, name))
    assert infer_diffusers_model_type(checkpoint) == DIFFUSERS_TYPE[name]
    assert key_problems(checkpoint, folder) == []
    assert shipped_config(name) == folder  # laid out once


def test_shipped_tokenizers_are_clips():
    folder = shipped_config("sdxl")
    for sub, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        tokenizer = transformers.CLIPTokenizer.from_pretrained(folder / sub)
        assert len(tokenizer) == 49408 and tokenizer.pad_token == pad
        assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_checkpoint_config_takes_a_shipped_name(tmp_path):
    from sdrt.export.model.single_file_load import checkpoint_config

    folder = checkpoint_config(tmp_path / "model.safetensors", "sd2")
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction"
