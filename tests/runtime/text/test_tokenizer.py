"""sdrt's CLIPTokenizer gives the ids of transformers' CLIPTokenizer for the same files."""

from __future__ import annotations

import logging
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from sdrt.runtime.text.clip_bpe import bytes_to_unicode, normalize, split_words
from sdrt.runtime.text.tokenizer import CLIPTokenizer
from tests import models

from .clip_bpe_trainer import english_corpus, train_clip_bpe, write_clip_tokenizer
from .prompt_corpus import corpus

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def trained_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab, merges = train_clip_bpe(english_corpus(), num_merges=8000)
    assert len(merges) > 5000, "the corpus should give several thousand merges"
    return vocab, merges


@pytest.fixture(scope="session")
def tokenizer_folders(tmp_path_factory, trained_bpe) -> dict[str, Path]:
    """SD1 (pad <|endoftext|>), SD2/SDXL-2 (pad "!"), bare vocab+merges, tokenizer.json as transformers 5 saves."""
    root = tmp_path_factory.mktemp("tokenizers")
    vocab, merges = trained_bpe
    folders = {
        "sd1": write_clip_tokenizer(root / "sd1", vocab, merges),
        "sd2": write_clip_tokenizer(root / "sd2", vocab, merges, pad_token="!"),
    }
    bare = root / "bare"
    bare.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(folders["sd1"] / name, bare / name)
    folders["bare"] = bare
    for source in ("sd1", "sd2"):
        saved = root / f"saved_{source}"
        transformers.CLIPTokenizer.from_pretrained(folders[source]).save_pretrained(saved)
        assert (saved / "tokenizer.json").is_file()
        folders[f"saved_{source}"] = saved
    tiny_vocab, tiny_merges = train_clip_bpe(english_corpus()[:20000], num_merges=400)
    folders["tiny"] = write_clip_tokenizer(root / "tiny", tiny_vocab, tiny_merges)
    # the tiny-model factory's tokenizers, saved as the tiny pipelines save them
    for pad, keep_json in (("<|endoftext|>", True), ("!", False)):
        folder = root / f"models_{'sd1' if keep_json else 'sd2'}"
        models._tokenizer(pad_token=pad).save_pretrained(folder)
        models.write_tiny_vocab(folder)
        if not keep_json:
            (folder / "tokenizer.json").unlink()
        folders[folder.name] = folder
    return folders


PROMPTS = corpus()


def test_corpus_is_large_and_varied():
    assert len(PROMPTS) >= 200
    assert any(len(p) > 500 for p in PROMPTS)
    assert "" in PROMPTS and any(p and not p.strip() for p in PROMPTS)


VARIANTS = ["sd1", "sd2", "bare", "saved_sd1", "saved_sd2", "tiny", "models_sd1", "models_sd2"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_ids_equal_transformers(tokenizer_folders, variant, caplog):
    folder = tokenizer_folders[variant]
    reference = transformers.CLIPTokenizer.from_pretrained(folder)
    ours = CLIPTokenizer.from_pretrained(folder)
    assert ours.pad_token_id == reference.pad_token_id
    assert ours.bos_token_id == reference.bos_token_id and ours.eos_token_id == reference.eos_token_id
    expected = reference(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="np")
    with caplog.at_level(logging.ERROR):
        got = ours(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="np")
    assert got.input_ids.dtype == expected["input_ids"].dtype == np.int64
    mismatched = [
        p for p, a, b in zip(PROMPTS, got.input_ids, expected["input_ids"]) if not np.array_equal(a, b)
    ]
    assert not mismatched, f"{len(mismatched)} prompts differ, first: {mismatched[0]!r}"
    np.testing.assert_array_equal(got.attention_mask, expected["attention_mask"])
    for prompt in PROMPTS:  # and without truncation or padding
        assert [ours.bos_token_id, *ours.encode(prompt), ours.eos_token_id] == reference(prompt).input_ids


def test_ids_equal_the_factory_tokenizer_object():
    """The in-memory tokenizer the tiny pipelines are saved with, against its files read by sdrt."""
    for pad in ("<|endoftext|>", "!"):
        reference = models._tokenizer(pad_token=pad)
        with tempfile.TemporaryDirectory() as scratch:
            reference.save_pretrained(scratch)
            ours = CLIPTokenizer.from_pretrained(scratch)
        expected = reference(
            PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="np"
        )
        got = ours(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="np")
        np.testing.assert_array_equal(got.input_ids, expected["input_ids"])


def test_pad_token_is_read_from_the_files(tokenizer_folders):
    sd1 = CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"])
    sd2 = CLIPTokenizer.from_pretrained(tokenizer_folders["sd2"])
    assert sd1.pad_token == "<|endoftext|>" and sd1.pad_token_id == sd1.eos_token_id
    assert sd2.pad_token == "!" and sd2.pad_token_id == 0
    ids = sd2("a cat", padding="max_length", return_tensors="np").input_ids
    end = 1 + len(sd2.encode("a cat"))
    assert ids.shape == (1, 77) and ids[0, end] == sd2.eos_token_id and (ids[0, end + 1 :] == 0).all()


CALLS = [
    ("a cat", {}),
    (["a cat", "a photo of a dog on the moon"], {}),
    (("a cat", "dog"), {}),
    ("", {}),
    ("a cat", {"return_tensors": "np"}),
    (["a cat", "a photo of a dog on the moon"], {"padding": True}),
    (["a cat", "a photo of a dog on the moon"], {"padding": "longest", "return_tensors": "np"}),
    ("a cat", {"padding": "max_length"}),
    (["a cat", "a dog"], {"padding": "max_length", "max_length": 10, "return_tensors": "np"}),
    ("a photo of a dog on the moon", {"max_length": 5}),  # max_length alone truncates
    ("a photo of a dog on the moon", {"max_length": 5, "padding": "max_length"}),  # with padding: it does not
    ("a photo of a dog on the moon", {"max_length": 5, "truncation": True, "padding": "max_length"}),
    ("a photo of a dog on the moon", {"truncation": True}),
    ("a photo of a dog on the moon", {"truncation": False, "max_length": 5}),
    ("a photo of a dog", {"add_special_tokens": False}),
    ("a photo of a dog " * 30, {}),  # longer than the model: left whole, with transformers' warning
    ("a photo of a dog " * 30, {"truncation": True, "return_tensors": "np"}),
    (["a photo of a dog " * 30, "a cat"], {"padding": "max_length", "truncation": True}),
]


@pytest.mark.parametrize(("text", "options"), CALLS)
def test_call_behaves_like_transformers(tokenizer_folders, text, options):
    """``tokenizer(text, **options)`` as transformers' CLIPTokenizer: lists by default (a flat list for one
    string), arrays with return_tensors="np", transformers' padding and truncation rules."""
    tok = CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"])
    reference = transformers.CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"])
    got, expected = tok(text, **options), reference(text, **options)
    assert set(got) == set(expected) == {"input_ids", "attention_mask"}
    for key in ("input_ids", "attention_mask"):
        if options.get("return_tensors") == "np":
            assert isinstance(got[key], np.ndarray) and got[key].dtype == expected[key].dtype == np.int64
            np.testing.assert_array_equal(got[key], expected[key])
        else:
            assert type(got[key]) is list and got[key] == expected[key], key
    assert got.input_ids is got["input_ids"]


def test_call_options(tokenizer_folders):
    tok = CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"])
    prompts = ["a cat", "a photo of a dog on the moon"]
    assert tok(prompts, padding=True, return_dtype=np.int32, return_tensors="np").input_ids.dtype == np.int32
    with pytest.raises(ValueError, match="different lengths.*padding='max_length'"):
        tok(prompts, return_tensors="np")  # transformers makes an object array of the ragged rows
    with pytest.raises(ValueError, match="padding must be"):
        tok(prompts, padding="to the moon")
    with pytest.raises(TypeError, match="text must be a string or a list of strings"):
        tok([1, 2])
    with pytest.raises(ValueError, match="return_tensors.*torch.from_numpy"):
        tok(prompts, return_tensors="pt")


def test_truncation_warns_like_diffusers(tokenizer_folders, caplog):
    folder = tokenizer_folders["sd1"]
    tok = CLIPTokenizer.from_pretrained(folder)
    reference = transformers.CLIPTokenizer.from_pretrained(folder)
    prompt = "a photo of a red fox in a snowy forest, " * 12 + "the very last words"
    with caplog.at_level(logging.WARNING, logger="sdrt.runtime.text.tokenizer"):
        ids = tok(prompt, padding="max_length", truncation=True, return_tensors="np").input_ids
    assert ids.shape == (1, 77) and ids[0, -1] == tok.eos_token_id
    # diffusers: batch_decode(untruncated_ids[:, model_max_length - 1 : -1])
    untruncated = reference(prompt, padding="longest", return_tensors="np")["input_ids"]
    removed = reference.batch_decode(untruncated[:, 76:-1])
    # only our logger: transformers' own length warning may also propagate here
    messages = [r.getMessage() for r in caplog.records if r.name == "sdrt.runtime.text.tokenizer"]
    assert len(messages) == 1
    assert "truncated because CLIP can only handle sequences up to 77 tokens" in messages[0]
    assert str(removed) in messages[0] and "the very last words" in messages[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sdrt.runtime.text.tokenizer"):
        tok(["a short prompt", "x " * 75], truncation=True)  # exactly 75 content tokens: fits
    assert not [r for r in caplog.records if r.name == "sdrt.runtime.text.tokenizer"]


def test_decode_equals_transformers(tokenizer_folders):
    tok = CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"])
    reference = transformers.CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"])
    for prompt in PROMPTS[:80]:
        ids = reference(prompt).input_ids
        assert tok.decode(ids) == reference.decode(ids)


def _assigned_codepoints() -> list[str]:
    return [
        chr(cp)
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) != "Cn"
    ]


def test_every_assigned_character_normalizes_and_splits_like_tokenizers(tokenizer_folders):
    """All characters of this Python's Unicode version, against the `tokenizers` normalizer and pre-tokenizer."""
    backend = transformers.CLIPTokenizer.from_pretrained(tokenizer_folders["sd1"]).backend_tokenizer
    byte_char = bytes_to_unicode()
    chars = _assigned_codepoints()
    for chunk_start in range(0, len(chars), 20000):
        chunk = chars[chunk_start : chunk_start + 20000]
        for sep in ("a", "!"):  # letters join runs of "a", other symbols runs of "!"
            text = sep + sep.join(chunk) + sep
            normalized = backend.normalizer.normalize_str(text)
            assert normalize(text) == normalized
            expected = [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]
            got = ["".join(byte_char[b] for b in w.encode("utf-8")) for w in split_words(normalized)]
            assert got == expected


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json and merges.txt"):
        CLIPTokenizer.from_pretrained(tmp_path)


def test_bad_merges_are_named(tokenizer_folders, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(tokenizer_folders["tiny"], folder)
    with open(folder / "merges.txt", "a", encoding="utf-8") as f:
        f.write("zzzq qqqz\n")
    with pytest.raises(ValueError, match="not in vocab.json"):
        CLIPTokenizer.from_pretrained(folder)
