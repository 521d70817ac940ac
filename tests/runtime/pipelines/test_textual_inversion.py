"""``pipe.load_textual_inversion`` at run time, torch-free: a prompt with the token gives diffusers' image
after its ``load_textual_inversion`` of the same file; unloading gives the bundle's own image back."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.runtime.errors import InputError
from tests.models import TEXT_HIDDEN
from tests.parity import assert_parity, initial_latents, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
safetensors_torch = pytest.importorskip("safetensors.torch")

LATENTS = initial_latents((1, 4, 8, 8), seed=5)
PROMPT = "a photo of <cat-toy> on <two> background"


def _files(tmp_path):
    g = torch.Generator().manual_seed(0)
    toy = tmp_path / "learned_embeds.safetensors"  # diffusers' format: the token is the key
    safetensors_torch.save_file({"<cat-toy>": torch.randn(TEXT_HIDDEN, generator=g)}, str(toy))
    two = tmp_path / "two.safetensors"  # A1111's: emb_params, two vectors, no token
    safetensors_torch.save_file(
        {"emb_params": torch.randn(2, TEXT_HIDDEN, generator=g).to(torch.float16)}, str(two)
    )
    return toy, two


def _run(pipe, prompt=PROMPT, **kwargs):
    latents = torch.from_numpy(LATENTS) if isinstance(pipe, diffusers.DiffusionPipeline) else LATENTS
    return pipe(prompt, latents=latents, num_inference_steps=3, output_type="np", **kwargs).images


@pytest.fixture
def pipes(tiny):
    from sdrt.runtime import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu")
    ref = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    for p in (pipe, ref):
        p.set_progress_bar_config(disable=True)
    return pipe, ref


def test_loaded_embeddings_match_diffusers_and_unload_restores(pipes, tmp_path):
    pipe, ref = pipes
    toy, two = _files(tmp_path)
    before = _run(pipe)
    for p in (pipe, ref):
        p.load_textual_inversion(str(toy))
        p.load_textual_inversion(str(two), token="<two>")
    expanded = pipe.tokenizer.expand_multi_vector_tokens(PROMPT)  # diffusers' maybe_convert_prompt
    assert (
        pipe.tokenizer(expanded).input_ids
        == ref.tokenizer(ref.maybe_convert_prompt(PROMPT, ref.tokenizer)).input_ids
    )
    actual, expected = _run(pipe), _run(ref)
    assert_parity(actual, expected)
    assert psnr(actual, before) < 40  # the embeddings change the picture
    pipe.unload_textual_inversion()
    np.testing.assert_array_equal(_run(pipe), before)
    assert "<cat-toy>" not in pipe.tokenizer.vocab


def test_embeddings_that_cannot_be_loaded_are_clear_errors(pipes, tmp_path):
    pipe, _ = pipes
    toy, two = _files(tmp_path)
    with pytest.raises(InputError, match="names no token"):
        pipe.load_textual_inversion(str(two))
    wide = tmp_path / "wide.safetensors"
    safetensors_torch.save_file({"<wide>": torch.zeros(TEXT_HIDDEN + 8)}, str(wide))
    with pytest.raises(InputError, match="wide"):
        pipe.load_textual_inversion(str(wide))
    pickle = tmp_path / "emb.pt"
    torch.save({"string_to_param": {"*": torch.zeros(1, TEXT_HIDDEN)}}, pickle)
    with pytest.raises(InputError, match="pickle"):
        pipe.load_textual_inversion(str(pickle))
    pipe.load_textual_inversion(str(toy))
    with pytest.raises(InputError, match="already in tokenizer vocabulary"):
        pipe.load_textual_inversion(str(toy))
    pipe.unload_textual_inversion()


def test_sdxl_embedding_for_both_encoders_matches_diffusers(tiny, tmp_path):
    """An SDXL file (clip_l and clip_g, two vectors each) into both encoders, as diffusers' docs load it."""
    from sdrt.runtime import StableDiffusionXLPipeline

    generator = torch.Generator().manual_seed(3)
    file = tmp_path / "sdxl-embedding.safetensors"
    state = {key: torch.randn(2, TEXT_HIDDEN, generator=generator) for key in ("clip_l", "clip_g")}
    safetensors_torch.save_file(state, str(file))
    prompt, latents = "a red <s0> on the background", initial_latents((1, 4, 8, 8), seed=7)
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny.bundle("sdxl"), provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    pipe.load_textual_inversion(str(file), token="<s0>")
    actual = pipe(prompt, latents=latents, num_inference_steps=3, output_type="np").images
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(tiny.model("sdxl"))
    ref.set_progress_bar_config(disable=True)
    ref.load_textual_inversion(
        state["clip_g"], token="<s0>", text_encoder=ref.text_encoder_2, tokenizer=ref.tokenizer_2
    )
    ref.load_textual_inversion(
        state["clip_l"], token="<s0>", text_encoder=ref.text_encoder, tokenizer=ref.tokenizer
    )
    expected = ref(prompt, latents=torch.from_numpy(latents), num_inference_steps=3, output_type="np").images
    assert_parity(actual, expected)
    with pytest.raises(InputError, match="clip_l and clip_g"):
        pipe.load_textual_inversion(str(file))  # no token


@pytest.mark.parametrize("values", ["zeros", "nan", "inf"])
def test_embeddings_of_zeros_or_nan_are_refused_and_change_nothing(pipes, tmp_path, values):
    """As at build: either would break every prompt holding the token (NaN: the whole conditioning), so the
    load refuses it naming the file and token, and the embeddings loaded before it keep working."""
    pipe, _ = pipes
    toy, _ = _files(tmp_path)
    pipe.load_textual_inversion(str(toy))
    before = _run(pipe, "a photo of <cat-toy>")
    vectors = torch.randn(2, TEXT_HIDDEN, generator=torch.Generator().manual_seed(3))
    vectors[1] = {"zeros": 0.0, "nan": float("nan"), "inf": float("inf")}[values]
    bad = tmp_path / "bad.safetensors"
    safetensors_torch.save_file({"emb_params": vectors}, str(bad))
    said = "a vector of zeros" if values == "zeros" else "NaN or Inf"
    with pytest.raises(InputError, match=f"bad.safetensors \\(<bad>\\).*{said}.*use another"):
        pipe.load_textual_inversion(str(bad), token="<bad>")
    assert "<bad>" not in pipe.tokenizer.vocab
    np.testing.assert_array_equal(_run(pipe, "a photo of <cat-toy>"), before)
    wide = tmp_path / "wide.safetensors"
    safetensors_torch.save_file({"<wide>": torch.ones(TEXT_HIDDEN + 8)}, str(wide))
    with pytest.raises(InputError, match=f"{TEXT_HIDDEN + 8} wide.*another model") as error:
        pipe.load_textual_inversion(str(wide))
    assert "{" not in str(error.value)
