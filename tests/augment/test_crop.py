from __future__ import annotations

import random

import pytest
from conftest import cranfield_documents

from st_drama.augment.crop import CropConfig, crop_queries, crop_query, without_crop
from st_drama.augment.text import split_sentences


def test_crop_is_a_sentence_of_the_document_and_reproducible():
    for row in cranfield_documents(20):
        text = row["text"]
        first = crop_query(text, random.Random(7))
        again = crop_query(text, random.Random(7))
        assert first == again
        assert first is not None
        assert " ".join(first.split()) in " ".join(text.split())
        words = first.split()
        assert CropConfig().min_words <= len(words) <= CropConfig().max_words


def test_crop_picks_among_usable_sentences_only():
    text = "Intro. This sentence has exactly seven words here. Tiny one. Another sentence that is long enough too."
    usable = {sentence for sentence in split_sentences(text) if len(sentence.split()) >= 5}
    crops = {crop_query(text, random.Random(seed)) for seed in range(40)}
    assert crops == usable


def test_long_sentences_are_cut_to_a_span_and_short_texts_give_nothing():
    long_sentence = " ".join(f"w{number}" for number in range(100))
    crop = crop_query(long_sentence, random.Random(0), CropConfig(max_words=10))
    assert len(crop.split()) == 10
    assert crop in long_sentence
    assert crop_query("too short text", random.Random(0)) is None


def test_text_of_short_sentences_falls_back_to_a_word_span():
    text = "aa bb. cc dd. ee ff. gg hh. ii jj. kk ll."
    settings = CropConfig(min_words=3, span_words=4)
    crops = {crop_query(text, random.Random(seed), settings) for seed in range(30)}
    assert all(len(crop.split()) == 4 and crop in text for crop in crops)
    assert len(crops) > 1
    assert crop_query("aa bb. cc dd.", random.Random(0), CropConfig(min_words=5)) is None


def test_several_crops_come_from_different_sentences_and_start_with_the_single_crop():
    long_sentence = " ".join(f"w{number}" for number in range(60)) + "."
    text = f"One sentence with enough words in it. {long_sentence} Tiny. Three has enough words too."
    usable = [sentence for sentence in split_sentences(text) if len(sentence.split()) >= 5]
    for seed in range(10):
        crops = crop_queries(text, random.Random(seed), count=2)
        assert len(crops) == 2 and len(set(crops)) == 2
        assert all(" ".join(crop.split()) in " ".join(text.split()) for crop in crops)
        assert crops[0] == crop_query(text, random.Random(seed))
        every_sentence = crop_queries(text, random.Random(seed), CropConfig(max_words=100), count=10)
        assert sorted(every_sentence) == sorted(usable)
    assert crop_queries("aa bb. cc dd ee ff gg.", random.Random(0), CropConfig(min_words=6), count=3) == [
        "aa bb. cc dd ee ff gg."
    ]
    assert crop_queries("too short", random.Random(0), count=3) == []
    with pytest.raises(ValueError, match="per_document"):
        CropConfig(per_document=0)


def test_a_crop_is_cut_out_of_its_document_whatever_the_whitespace():
    text = "First sentence stays here.\nThe cropped\n sentence spans   a line break.  Last sentence stays too."
    context = without_crop(text, "The cropped sentence spans a line break.")
    assert context == "First sentence stays here. Last sentence stays too."
    for row in cranfield_documents(20):
        crop = crop_query(row["text"], random.Random(3))
        words, context_words, crop_words = row["text"].split(), without_crop(row["text"], crop).split(), crop.split()
        start = next(i for i in range(len(words)) if words[i : i + len(crop_words)] == crop_words)
        assert context_words == words[:start] + words[start + len(crop_words) :]


def test_a_crop_that_is_absent_or_the_whole_document_leaves_the_text_alone():
    text = "Only one sentence in this short document."
    assert without_crop(text, "Only one sentence in this short document.") == text
    assert without_crop(text, "words that do not occur") == text
    assert without_crop("a b c d e f g h", "c d", min_words=7) == "a b c d e f g h"
    assert without_crop("a b c d e f g h", "c d", min_words=6) == "a b e f g h"


def test_every_whole_word_occurrence_of_a_crop_is_cut():
    text = "the wing stalls. lathe wing is here, and the wing stalls. more words follow here"
    assert without_crop(text, "the wing stalls.") == "lathe wing is here, and more words follow here"


def test_context_removal_must_be_a_probability():
    with pytest.raises(ValueError, match="context_removal"):
        CropConfig(context_removal=1.5)


def test_the_title_stays_at_the_front_of_the_context():
    full_text = "Emanuel Goldberg Emanuel Goldberg was a chemist. He was born in Moscow and moved to Israel."
    crop = "Emanuel Goldberg Emanuel Goldberg was a chemist."
    assert without_crop(full_text, crop) == "He was born in Moscow and moved to Israel."
    assert without_crop(full_text, crop, title="Emanuel Goldberg") == (
        "Emanuel Goldberg He was born in Moscow and moved to Israel."
    )
    middle = "Emanuel Goldberg He was born in Moscow and moved to Israel."
    assert without_crop(full_text, "He was born in Moscow and moved to Israel.", title="Emanuel Goldberg") == (
        "Emanuel Goldberg Emanuel Goldberg was a chemist."
    )
    assert without_crop(middle, "absent words here", title="Emanuel Goldberg") == middle
