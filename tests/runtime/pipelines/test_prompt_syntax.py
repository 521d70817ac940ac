"""``prompt_syntax="a1111"``: AUTOMATIC1111's attention syntax, ``BREAK`` and prompts of any length.

The parser against the examples A1111's ``parse_prompt_attention`` documents; the embeddings against
A1111's algorithm written out here with transformers' tokenizer and CLIPTextModel (tokenize each fragment,
chunks of 75 with BOS/EOS and padding, ``z * w`` rescaled to the original mean, chunks concatenated);
plain prompts unchanged; images against diffusers given the reference embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.runtime.errors import InputError
from sdrt.runtime.text.attention import parse_prompt_attention
from sdrt.runtime.text.chunks import prompt_chunks
from tests.parity import assert_parity, initial_latents

# A1111's docstring examples, and the edge cases its code defines (unbalanced brackets, BREAK)
PARSED = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
    ("[faded", [("faded", 1 / 1.1)]),
    ("closed) only]", [("closed) only]", 1.0)]),
    ("(word:1.2)", [("word", 1.2)]),
    ("(word:x)", [("word:x", 1.1)]),
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("", [("", 1.0)]),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parser_matches_a1111s_documented_examples(text, expected):
    assert parse_prompt_attention(text) == expected


torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

WEIGHTED = "a photo of a (red:1.3) cat on [a mat], ((sunny))"
FRAGMENTS = [("a photo of a ", 1.0), ("red", 1.3), (" cat on ", 1.0), ("a mat", 1 / 1.1), (", ", 1.0)]
FRAGMENTS += [("sunny", 1.1 * 1.1)]
LONG_WORDS = " ".join(["red cat and blue dog"] * 32)  # no commas (the backtrack rule is tested apart)


def reference_embeds(tokenizer, text_encoder, fragments, chunks=None):
    """A1111's algorithm in torch, on transformers' tokenizer and text encoder: [1, 77 x chunks, D]."""
    ids, weights = [], []
    for text, weight in fragments:
        tokens = tokenizer(text, add_special_tokens=False).input_ids
        ids += tokens
        weights += [weight] * len(tokens)
    count = max(1, -(-len(ids) // 75)) if chunks is None else chunks
    out = []
    for c in range(count):
        part, w = ids[c * 75 : (c + 1) * 75], weights[c * 75 : (c + 1) * 75]
        pad = 75 - len(part)
        row = [tokenizer.bos_token_id, *part, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * pad
        mult = torch.tensor([1.0, *w, 1.0] + [1.0] * pad)
        with torch.no_grad():
            z = text_encoder(torch.tensor([row])).last_hidden_state
        original = z.mean()
        z = z * mult[None, :, None]
        out.append(z * (original / z.mean()))
    return torch.cat(out, dim=1)


@pytest.fixture(scope="module")
def sd1(model_folders, tmp_path_factory):
    """The tiny SD 1 model with a non-zero final layer-norm bias, as real CLIP models have (with the tiny
    model's zero bias every token's hidden state has mean 0 and A1111's mean restore divides by ~0), built
    with ``--prompt-chunks 3``: its UNet takes 77 x 1..3 tokens."""
    import diffusers

    from sdrt.cli.build_engine import main as build_engine
    from sdrt.runtime import StableDiffusionPipeline
    from tests.parity import BUILD_OPTIONS

    root = tmp_path_factory.mktemp("prompt_syntax")
    ref = diffusers.StableDiffusionPipeline.from_pretrained(model_folders("sd1"))
    norm = getattr(ref.text_encoder, "text_model", ref.text_encoder).final_layer_norm  # transformers 5: flat
    with torch.no_grad():
        norm.bias.copy_(torch.randn(norm.bias.shape, generator=torch.Generator().manual_seed(0)) * 0.5)
    ref.save_pretrained(root / "model")
    ref.set_progress_bar_config(disable=True)
    options = [
        *BUILD_OPTIONS["sd1"],
        "--prompt-chunks",
        "3",
        "--components",
        "text_encoder",
        "unet",
        "vae_decoder",
    ]
    build = [str(root / "model"), "-o", str(root / "bundle"), "--backend", "ort", "--precision", "fp32", "-q"]
    assert build_engine([*build, *options]) in (0, None)  # validated: the UNet's ORT graph at 77 and 154
    pipe = StableDiffusionPipeline.from_pretrained(root / "bundle", provider="cpu")
    pipe.scheduler = type(pipe.scheduler).from_config(dict(ref.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    return ref, pipe


def _encoder(pipe, limit=None):
    from sdrt.runtime.pipelines.prompts import PromptEncoder

    return PromptEncoder(pipe.tokenizer, pipe.text_encoder, np, syntax="a1111", limit=limit)


def test_weighted_prompt_embeddings_match_a1111s_algorithm(sd1):
    ref, pipe = sd1
    embeds = _encoder(pipe).encode(WEIGHTED, negative_prompt="blurry")
    expected = reference_embeds(ref.tokenizer, ref.text_encoder, FRAGMENTS)
    np.testing.assert_allclose(embeds.prompt_embeds, expected.numpy(), rtol=1e-4, atol=1e-4)
    negative = reference_embeds(ref.tokenizer, ref.text_encoder, [("blurry", 1.0)])
    np.testing.assert_allclose(embeds.negative_prompt_embeds, negative.numpy(), rtol=1e-4, atol=1e-4)


def test_long_prompt_is_chunked_and_the_negative_padded_to_its_chunks(sd1):
    ref, pipe = sd1
    assert 150 < len(ref.tokenizer(LONG_WORDS, add_special_tokens=False).input_ids) <= 225  # 3 chunks
    embeds = _encoder(pipe).encode(LONG_WORDS, negative_prompt="blurry")
    expected = reference_embeds(ref.tokenizer, ref.text_encoder, [(LONG_WORDS, 1.0)])
    assert embeds.prompt_embeds.shape == expected.shape == (1, 77 * 3, expected.shape[-1])
    np.testing.assert_allclose(embeds.prompt_embeds, expected.numpy(), rtol=1e-4, atol=1e-4)
    empty = reference_embeds(ref.tokenizer, ref.text_encoder, [("", 1.0)])
    negative = torch.cat(
        [reference_embeds(ref.tokenizer, ref.text_encoder, [("blurry", 1.0)]), empty, empty], 1
    )
    np.testing.assert_allclose(embeds.negative_prompt_embeds, negative.numpy(), rtol=1e-4, atol=1e-4)


def test_break_starts_a_new_chunk(sd1):
    ref, pipe = sd1
    chunks = prompt_chunks(pipe.tokenizer, "a cat BREAK a (dog:1.5)")
    assert len(chunks) == 2 and all(len(c.ids) == len(c.weights) == 77 for c in chunks)
    embeds = _encoder(pipe).encode("a cat BREAK a (dog:1.5)", do_classifier_free_guidance=False)
    expected = torch.cat(
        [
            reference_embeds(ref.tokenizer, ref.text_encoder, [("a cat", 1.0)]),
            reference_embeds(ref.tokenizer, ref.text_encoder, [("a ", 1.0), ("dog", 1.5)]),
        ],
        dim=1,
    )
    np.testing.assert_allclose(embeds.prompt_embeds, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_a_comma_near_the_chunk_end_moves_the_phrase_to_the_next_chunk(sd1):
    _, pipe = sd1
    text = "cat " * 70 + ", red dog house tree sky blue"
    chunks = prompt_chunks(pipe.tokenizer, text)
    comma = pipe.tokenizer.vocab[",</w>"]
    first = chunks[0].ids
    assert first[71] == comma and first[72] == pipe.tokenizer.eos_token_id  # cut after the comma, as A1111


def test_plain_prompt_is_unchanged_without_prompt_syntax(sd1):
    _, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=5)
    kwargs = dict(num_inference_steps=2, latents=latents, output_type="np")
    before = pipe("a (red) cat", negative_prompt="blurry", **kwargs).images
    again = pipe("a (red) cat", negative_prompt="blurry", prompt_syntax=None, **kwargs).images
    np.testing.assert_array_equal(before, again)
    embeds = pipe.encode_prompt("a (red) cat", 1, True, "blurry")
    ids = pipe.tokenizer(
        ["a (red) cat"], padding="max_length", max_length=77, truncation=True, return_tensors="np"
    )
    np.testing.assert_array_equal(embeds[0], pipe.text_encoder(ids.input_ids)["last_hidden_state"])


def test_weighted_prompt_image_matches_diffusers_on_the_reference_embeddings(sd1):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=6)
    embeds = reference_embeds(ref.tokenizer, ref.text_encoder, FRAGMENTS)
    negative = reference_embeds(ref.tokenizer, ref.text_encoder, [("", 1.0)])
    kwargs = dict(num_inference_steps=3, output_type="np")
    expected = ref(
        prompt_embeds=embeds, negative_prompt_embeds=negative, latents=torch.from_numpy(latents), **kwargs
    ).images
    actual = pipe(WEIGHTED, prompt_syntax="a1111", latents=latents, **kwargs).images
    assert_parity(actual, expected)


def test_long_prompt_image_matches_diffusers_on_the_reference_embeddings(sd1):
    ref, pipe = sd1
    record = pipe.manifest.components["unet"]
    assert record.inputs["encoder_hidden_states"].shape[1] == "sequence" and record.dims["sequence"] == (
        77,
        231,
    )
    assert {"sequence": 154}.items() <= record.validation["shapes"][1].items()  # checked against torch
    latents = initial_latents((1, 4, 8, 8), seed=7)
    embeds = reference_embeds(ref.tokenizer, ref.text_encoder, [(LONG_WORDS + " ", 1.0), ("red", 1.2)])
    empty = reference_embeds(ref.tokenizer, ref.text_encoder, [("", 1.0)])
    kwargs = dict(num_inference_steps=3, output_type="np")
    expected = ref(
        prompt_embeds=embeds,
        negative_prompt_embeds=torch.cat([empty] * 3, dim=1),
        latents=torch.from_numpy(latents),
        **kwargs,
    ).images
    actual = pipe(LONG_WORDS + " (red:1.2)", prompt_syntax="a1111", latents=latents, **kwargs).images
    assert_parity(actual, expected)  # PSNR >= 40 dB


def test_prompts_longer_than_the_unet_takes_are_refused_naming_the_limit(tiny, sd1):
    fixed = tiny.pipeline("sd1", "StableDiffusionPipeline")  # built without --prompt-chunks: 77
    with pytest.raises(InputError, match=r"at most 77 .*--prompt-chunks 2"):
        fixed(" ".join(["cat dog"] * 60), prompt_syntax="a1111", num_inference_steps=1, output_type="np")
    with pytest.raises(InputError, match=r"at most 231 \(3 chunk"):
        sd1[1](" ".join(["cat dog"] * 10_000), prompt_syntax="a1111", num_inference_steps=1, output_type="np")


def test_unknown_prompt_syntax_is_refused(sd1):
    _, pipe = sd1
    with pytest.raises(InputError, match="prompt_syntax"):
        pipe("a cat", prompt_syntax="comfy", num_inference_steps=1, output_type="np")


def test_sdxl_weighted_prompt_matches_a1111s_algorithm(tiny):
    ref = tiny.reference("sdxl", "StableDiffusionXLPipeline")
    pipe = tiny.pipeline("sdxl", "StableDiffusionXLPipeline")
    from sdrt.runtime.pipelines.sdxl_prompts import SDXLPromptEncoder

    encoders = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
    embeds = SDXLPromptEncoder(encoders, np, True, syntax="a1111").encode(LONG_WORDS + " (red:1.3)")
    fragments = [(LONG_WORDS + " ", 1.0), ("red", 1.3)]
    hidden = []
    for tokenizer, encoder in ((ref.tokenizer, ref.text_encoder), (ref.tokenizer_2, ref.text_encoder_2)):
        hidden.append(reference_embeds(tokenizer, _Penultimate(encoder), fragments))
    expected = torch.cat(hidden, dim=-1)
    np.testing.assert_allclose(embeds.prompt_embeds, expected.numpy(), rtol=1e-4, atol=1e-4)
    first = ref.tokenizer_2(LONG_WORDS, add_special_tokens=False).input_ids[:75]
    row = [ref.tokenizer_2.bos_token_id, *first, ref.tokenizer_2.eos_token_id]
    with torch.no_grad():
        pooled = ref.text_encoder_2(torch.tensor([row])).text_embeds
    np.testing.assert_allclose(embeds.pooled, pooled.numpy(), rtol=1e-4, atol=1e-4)
    assert not np.any(embeds.negative_prompt_embeds) and embeds.negative_prompt_embeds.shape == expected.shape


class _Penultimate:
    """SDXL's text encoders as A1111 reads them: the penultimate hidden states, as last_hidden_state."""

    def __init__(self, encoder):
        self.encoder = encoder

    def __call__(self, ids):
        out = self.encoder(ids, output_hidden_states=True)
        return type("Out", (), {"last_hidden_state": out.hidden_states[-2]})


def test_sdrt_generate_takes_the_prompt_syntax(tiny, tmp_path):
    from tests.cli.test_errors import assert_one_line_error, run

    bundle, out = str(tiny.bundle("sd1")), tmp_path / "cat.png"
    common = ["--prompt-syntax", "a1111", "--steps", "1", "--seed", "1", "--no-progress", "-o", str(out)]
    result = run("sdrt", "generate", bundle, "a (red:1.3) cat on [grass]", *common)
    assert result.returncode == 0 and out.is_file(), result.stderr[-2000:]
    refused = run("sdrt", "generate", bundle, "cat dog " * 5000, *common)
    assert_one_line_error(refused, "sdrt generate", "at most 77", "shorten the prompt")


@pytest.mark.parametrize("chunks", ["0", "17"])
def test_build_engine_refuses_a_prompt_chunk_count_out_of_range(model_folders, tmp_path, chunks):
    from tests.cli.test_errors import assert_one_line_error, run

    result = run(
        "build-engine", str(model_folders("sd1")), "-o", str(tmp_path / "out"), "--prompt-chunks", chunks
    )
    assert_one_line_error(
        result, "build-engine", f"--prompt-chunks {chunks} must be a whole number from 1 to 16"
    )
