"""``clip_skip``: a bundle built with ``--clip-skip K`` conditions the prompts on the earlier layer diffusers'
``clip_skip=K`` takes (the negative prompts on the last, as diffusers does). SD 1.x against diffusers fed the
clip-skipped embeddings made with transformers (diffusers' own SD path needs transformers < 5's
``text_model``), SDXL against diffusers' own ``clip_skip``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity import assert_parity, build_bundle, initial_latents

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

STEPS = 3
PROMPT = "a photo of a cat"


@pytest.fixture(scope="module")
def skip_bundles(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_skip")
    options = ["--min-size", "32", "--max-size", "64", "--max-batch", "1", "--clip-skip", "1"]
    sdxl = [*options, "--components", "text_encoder", "text_encoder_2", "unet", "vae_decoder"]
    return {
        "sd1": build_bundle(tiny.model("sd1"), root / "sd1", options),
        "sdxl": build_bundle(tiny.model("sdxl"), root / "sdxl", sdxl),
    }


def test_sd1_clip_skip_matches_diffusers_on_the_same_embeddings(tiny, skip_bundles):
    from sdrt.runtime import StableDiffusionPipeline

    ref = tiny.reference("sd1", "StableDiffusionPipeline")
    ids = ref.tokenizer([PROMPT], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ref.text_encoder(ids.input_ids, output_hidden_states=True).hidden_states[-2]
        embeds = ref.text_encoder.final_layer_norm(hidden)  # what diffusers' clip_skip=1 takes
    latents = initial_latents((1, 4, 8, 8), seed=3)
    expected = ref(
        prompt_embeds=embeds, num_inference_steps=STEPS, latents=torch.from_numpy(latents), output_type="np"
    ).images
    pipe = StableDiffusionPipeline.from_pretrained(skip_bundles["sd1"], provider="cpu")
    pipe.scheduler = type(pipe.scheduler).from_config(dict(ref.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    actual = pipe(PROMPT, num_inference_steps=STEPS, latents=latents, output_type="np", clip_skip=1).images
    assert_parity(actual, expected)
    plain = pipe(PROMPT, num_inference_steps=STEPS, latents=latents, output_type="np").images
    assert not np.allclose(plain, actual, atol=1e-3)  # the skipped layer made a difference


def test_sdxl_clip_skip_matches_diffusers(tiny, skip_bundles):
    from sdrt.runtime import StableDiffusionXLPipeline

    ref = tiny.reference("sdxl", "StableDiffusionXLPipeline")
    latents = initial_latents((1, 4, 8, 8), seed=4)
    kwargs = dict(num_inference_steps=STEPS, output_type="np", height=64, width=64, clip_skip=1)
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    pipe = StableDiffusionXLPipeline.from_pretrained(skip_bundles["sdxl"], provider="cpu")
    pipe.scheduler = type(pipe.scheduler).from_config(dict(ref.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    assert_parity(pipe(PROMPT, latents=latents, **kwargs).images, expected)


def test_another_clip_skip_than_the_bundles_is_refused(skip_bundles):
    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.errors import InputError

    pipe = StableDiffusionPipeline.from_pretrained(skip_bundles["sd1"], provider="cpu")
    with pytest.raises(InputError, match="exported for clip_skip=1.*--clip-skip 2, or pass clip_skip=1"):
        pipe(PROMPT, num_inference_steps=STEPS, clip_skip=2)
