from __future__ import annotations

from st_drama.augment.text import (
    content_stems,
    content_words,
    most_repeated_ngram_count,
    ngram_overlap,
    normalize_text,
    split_sentences,
)


def test_sentences_split_on_latin_arabic_and_cjk_marks():
    assert split_sentences("one two. three four? five!\nsix") == ["one two.", "three four?", "five!", "six"]
    assert split_sentences("ما هذا؟ هذا نهر.") == ["ما هذا؟", "هذا نهر."]
    assert split_sentences("今日は晴れ。明日は雨。") == ["今日は晴れ。", "明日は雨。"]
    assert split_sentences("  ") == []


def test_sentences_do_not_end_at_initials_and_abbreviations():
    text = "tests ran in the 12-in. tunnel. as h. smith showed in fig. 3, e.g. at mach 2, it works. done."
    assert split_sentences(text) == [
        "tests ran in the 12-in. tunnel.",
        "as h. smith showed in fig. 3, e.g. at mach 2, it works.",
        "done.",
    ]


def test_content_words_skip_short_and_function_words():
    assert content_words("What is the lift of a wing?") == {"lift", "wing"}
    assert content_stems("heating of wings") == {"heat", "wing"}
    assert content_words("le coefficient de la portance") == {"coefficient", "portance"}


def test_ngram_overlap_and_repetition():
    document = "the boundary layer on a flat plate grows with distance"
    assert ngram_overlap("boundary layer on a flat plate", document, 4) == 1.0
    assert ngram_overlap("why does a boundary layer grow", document, 4) == 0.0
    assert ngram_overlap("short query", document, 4) == 0.0
    assert most_repeated_ngram_count("of a plate of a plate of a plate", 3) == 3
    assert most_repeated_ngram_count("no repeats here at all", 3) == 1


def test_normalize_text_ignores_case_punctuation_and_spacing():
    assert normalize_text("  What IS lift?? ") == normalize_text("what is lift") == "what is lift"
