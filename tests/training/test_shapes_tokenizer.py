"""The shapes tokenizer files give the same ids in transformers' CLIPTokenizer and sdrt's."""

import numpy as np
import pytest

from sdrt.runtime.text.tokenizer import CLIPTokenizer as SdrtTokenizer
from training.shapes_data import make_example
from training.shapes_tokenizer import VOCABULARY, make_clip_tokenizer

PROMPTS = [
    "",
    "a red circle",
    "a small blue square on a black background",
    "A Large  YELLOW triangle, on a gray background!",
    "a purple hexagon",  # a word outside the vocabulary falls back to byte tokens
]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes_tokenizer")
    hf = make_clip_tokenizer(folder)
    hf.save_pretrained(folder)  # adds tokenizer_config.json with the special tokens
    return hf, SdrtTokenizer.from_pretrained(folder)


def test_every_vocabulary_word_is_one_token(tokenizers):
    hf, sdrt = tokenizers
    for word in VOCABULARY:
        assert len(hf(word).input_ids) == 3, word
        assert sdrt.encode(word) == [sdrt.vocab[word + "</w>"]]


def test_ids_identical_in_transformers_and_sdrt(tokenizers):
    hf, sdrt = tokenizers
    prompts = PROMPTS + [make_example(seed)[1] for seed in range(50)]
    expected = hf(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="np")
    got = sdrt(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="np")
    assert np.array_equal(got["input_ids"], expected["input_ids"])
    assert np.array_equal(got["attention_mask"], expected["attention_mask"])
