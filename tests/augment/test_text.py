from __future__ import annotations

import json

import pytest
from conftest import ARABIC_TEXTS, shared_collection

from st_drama.augment.text import (
    content_stems,
    content_words,
    detect_language,
    dominant_script,
    language_name,
    language_script,
    most_repeated_ngram_count,
    ngram_overlap,
    normalize_text,
    split_sentences,
)


def first_texts(collection: str, count: int) -> list[str]:
    texts = []
    with open(shared_collection(collection) / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["text"].strip():
                texts.append(f"{row.get('title', '')} {row['text']}".strip())
            if len(texts) == count:
                break
    return texts


@pytest.mark.parametrize(("collection", "language"), [("arcd_ar_subset", "ar"), ("cranfield", "en"), ("cisi", "en")])
def test_detects_the_language_of_real_corpora(collection, language):
    texts = first_texts(collection, 30)
    assert [detect_language(text) for text in texts] == [language] * len(texts)


def test_detects_arabic_passages():
    assert [detect_language(text) for text in ARABIC_TEXTS] == ["ar", "ar"]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Le chat est sur la table et il dort dans la cuisine.", "fr"),
        ("Der Hund ist nicht im Haus, sondern mit den Kindern auf der Straße.", "de"),
        ("El perro de la casa es muy grande y no come con los niños.", "es"),
        ("Москва является столицей России.", "ru"),
        ("Київ є столицею України.", "uk"),
        ("東京は日本の首都です。", "ja"),
        ("北京是中国的首都。", "zh"),
        ("서울은 한국의 수도입니다.", "ko"),
        ("boundary layer transition", "en"),
        ("12345 !!!", "und"),
    ],
)
def test_detects_other_languages_and_scripts(text, language):
    assert detect_language(text) == language


def test_language_names_and_scripts():
    assert language_name("ar") == "Arabic"
    assert language_name("en") == "English"
    assert language_name("xx") == "the same language as the document"
    assert language_script("ar") == "arabic"
    assert language_script("fr") == "latin"
    assert language_script("und") is None
    assert dominant_script("ما هو طول نهر النيل") == "arabic"
    assert dominant_script("what is lift") == "latin"
    assert dominant_script("42") is None


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
