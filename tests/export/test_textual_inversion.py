"""``build-engine --textual-inversion``: a prompt with the embedding's token gives diffusers' image after
its ``load_textual_inversion`` of the same file (diffusers and A1111 formats, one and two vectors)."""

from __future__ import annotations

import pytest

from sdrt.cli.build_engine import main
from tests.models import TEXT_HIDDEN
from tests.parity import BUILD_OPTIONS, PARITY_DB, assert_parity, build_bundle, initial_latents, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

LATENTS = initial_latents((1, 4, 8, 8), seed=5)


def _diffusers_file(path, token, *, seed=0):
    from safetensors.torch import save_file

    save_file({token: torch.randn(TEXT_HIDDEN, generator=torch.Generator().manual_seed(seed))}, str(path))
    return path


def _a1111_file(path, *, vectors, seed=1):
    vectors = torch.randn(vectors, TEXT_HIDDEN, generator=torch.Generator().manual_seed(seed))
    torch.save({"string_to_param": {"*": vectors}, "name": "two-vector"}, path)
    return path


def _images(tiny, bundle, prompt, load):
    from sdrt.runtime import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    actual = pipe(prompt, latents=LATENTS, num_inference_steps=3, output_type="np").images
    ref = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    ref.set_progress_bar_config(disable=True)
    base = ref(prompt, latents=torch.from_numpy(LATENTS), num_inference_steps=3, output_type="np").images
    load(ref)
    assert pipe.tokenizer(prompt).input_ids == ref.tokenizer(prompt).input_ids  # transformers' ids
    expected = ref(prompt, latents=torch.from_numpy(LATENTS), num_inference_steps=3, output_type="np").images
    return actual, expected, base


def _bundle(tiny, tmp_path, *specs):
    flags = [f for spec in specs for f in ("--textual-inversion", str(spec))]
    options = [*BUILD_OPTIONS["sd1"], *flags, "--components", "text_encoder", "unet", "vae_decoder"]
    return build_bundle(tiny.model("sd1"), tmp_path / "bundle", options)


def test_embeddings_in_both_formats_match_diffusers(tiny, tmp_path):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.runtime.bundle.bundle import open_bundle

    toy = _diffusers_file(tmp_path / "learned_embeds.safetensors", "<cat-toy>")
    two = _a1111_file(tmp_path / "two.pt", vectors=2)
    bundle = _bundle(tiny, tmp_path, toy, f"{two}:<two>")
    assert f"embeddings   {toy}, {two}:<two>" in describe_bundle(open_bundle(bundle))

    def load(ref):
        ref.load_textual_inversion(str(toy))
        ref.load_textual_inversion(str(two), token="<two>")

    actual, expected, base = _images(tiny, bundle, "a photo of <cat-toy> on <two> background", load)
    assert_parity(actual, expected)
    assert psnr(actual, base) < PARITY_DB  # without the embeddings diffusers draws another picture


def _fails(capsys, tiny, tmp_path, specs, said, kind="sd1"):
    out = tmp_path / "out"
    flags = [f for spec in specs for f in ("--textual-inversion", str(spec))]
    code = main([str(tiny.model(kind)), "-o", str(out), *flags, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir())
    return err


def test_embeddings_that_cannot_be_added_are_clear_errors(tiny, tmp_path, capsys):
    from safetensors.torch import save_file

    toy = _diffusers_file(tmp_path / "toy.safetensors", "<toy>")
    _fails(capsys, tiny, tmp_path, [toy, f"{toy}:<toy>"], "diffusers cannot add it")  # a token twice
    wide = tmp_path / "wide.safetensors"
    save_file({"<wide>": torch.zeros(TEXT_HIDDEN * 2)}, str(wide))
    err = _fails(capsys, tiny, tmp_path, [wide], f"its vectors are not {TEXT_HIDDEN} wide")
    assert "{" not in err, err  # not diffusers' message with its unfilled placeholders
    _fails(capsys, tiny, tmp_path, [tmp_path / "missing.pt"], "no such file")
    _fails(capsys, tiny, tmp_path, [toy], "an SDXL embedding file names no token", kind="sdxl")
    _fails(capsys, tiny, tmp_path, [f"{toy}:<s0>"], "holds clip_l and clip_g", kind="sdxl")
    _fails(capsys, tiny, tmp_path, [toy], "not to uncond models", kind="uncond")


@pytest.mark.parametrize("values", ["zeros", "nan", "inf"])
def test_embeddings_of_zeros_or_nan_are_refused(tiny, tmp_path, capsys, values):
    """Either breaks every prompt holding the token (NaN: and the whole conditioning), so the build refuses."""
    from safetensors.torch import save_file

    vectors = torch.randn(2, TEXT_HIDDEN, generator=torch.Generator().manual_seed(3))
    vectors[1] = {"zeros": 0.0, "nan": float("nan"), "inf": float("inf")}[values]
    bad = tmp_path / "bad.safetensors"
    save_file({"emb_params": vectors}, str(bad))
    said = "a vector of zeros" if values == "zeros" else "NaN or Inf"
    _fails(capsys, tiny, tmp_path, [f"{bad}:<bad>"], said)


def test_an_empty_token_is_refused(tiny, tmp_path, capsys):
    toy = _diffusers_file(tmp_path / "toy.safetensors", "<toy>")
    _fails(capsys, tiny, tmp_path, [f"{toy}:"], "the token after ':' is empty")


def test_sdxl_embedding_for_both_encoders_matches_diffusers(tiny, tmp_path):
    """An SDXL embedding (clip_l and clip_g vectors, two each) added as diffusers' docs add it."""
    from safetensors.torch import load_file, save_file

    from sdrt.runtime import StableDiffusionXLPipeline

    generator = torch.Generator().manual_seed(3)
    file = tmp_path / "sdxl-embedding.safetensors"
    vectors = {key: torch.randn(2, TEXT_HIDDEN, generator=generator) for key in ("clip_l", "clip_g")}
    save_file(vectors, str(file))
    options = [*BUILD_OPTIONS["sdxl"], "--textual-inversion", f"{file}:<s0>"]
    bundle = build_bundle(tiny.model("sdxl"), tmp_path / "bundle", options)
    prompt, latents = "a red <s0> on the background", initial_latents((1, 4, 8, 8), seed=7)
    pipe = StableDiffusionXLPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    actual = pipe(prompt, latents=latents, num_inference_steps=3, output_type="np").images
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(tiny.model("sdxl"))
    ref.set_progress_bar_config(disable=True)
    state = load_file(str(file))
    ref.load_textual_inversion(
        state["clip_g"], token="<s0>", text_encoder=ref.text_encoder_2, tokenizer=ref.tokenizer_2
    )
    ref.load_textual_inversion(
        state["clip_l"], token="<s0>", text_encoder=ref.text_encoder, tokenizer=ref.tokenizer
    )
    expected = ref(prompt, latents=torch.from_numpy(latents), num_inference_steps=3, output_type="np").images
    assert_parity(actual, expected)
