from __future__ import annotations

import random

from st_drama.augment.crop import CropSettings, crop_query
from st_drama.augment.text import split_sentences

from .conftest import cranfield_documents


def test_crop_is_a_sentence_of_the_document_and_reproducible():
    for row in cranfield_documents(20):
        text = row["text"]
        first = crop_query(text, random.Random(7))
        again = crop_query(text, random.Random(7))
        assert first == again
        assert first is not None
        assert " ".join(first.split()) in " ".join(text.split())
        words = first.split()
        assert CropSettings().min_words <= len(words) <= CropSettings().max_words


def test_crop_picks_among_usable_sentences_only():
    text = "Intro. This sentence has exactly seven words here. Tiny one. Another sentence that is long enough too."
    usable = {sentence for sentence in split_sentences(text) if len(sentence.split()) >= 5}
    crops = {crop_query(text, random.Random(seed)) for seed in range(40)}
    assert crops == usable


def test_long_sentences_are_cut_to_a_span_and_short_texts_give_nothing():
    long_sentence = " ".join(f"w{number}" for number in range(100))
    crop = crop_query(long_sentence, random.Random(0), CropSettings(max_words=10))
    assert len(crop.split()) == 10
    assert crop in long_sentence
    assert crop_query("too short text", random.Random(0)) is None


def test_text_of_short_sentences_falls_back_to_a_word_span():
    text = "aa bb. cc dd. ee ff. gg hh. ii jj. kk ll."
    settings = CropSettings(min_words=3, span_words=4)
    crops = {crop_query(text, random.Random(seed), settings) for seed in range(30)}
    assert all(len(crop.split()) == 4 and crop in text for crop in crops)
    assert len(crops) > 1
    assert crop_query("aa bb. cc dd.", random.Random(0), CropSettings(min_words=5)) is None
