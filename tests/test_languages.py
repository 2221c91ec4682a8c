from __future__ import annotations

import json

import pytest
from conftest import ARABIC_TEXTS, shared_collection

from st_drama.defaults import STYLES
from st_drama.languages import (
    Language,
    corpus_language,
    detect_language,
    dominant_script,
    iso639_3,
    language_name,
    language_script,
)
from st_drama.models.task_formats import PROMPT_STYLES


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
    assert [detect_language(text).iso for text in texts] == [language] * len(texts)


@pytest.mark.parametrize(
    ("collection", "mteb_code"),
    [("xquadr_de", "deu-Latn"), ("xquadr_hi", "hin-Deva"), ("trecdl21_passage_pool", "eng-Latn")],
)
def test_detects_the_mteb_language_of_a_whole_collection(collection, mteb_code):
    texts = first_texts(collection, 200)
    assert detect_language(texts).mteb == mteb_code
    assert corpus_language(texts).mteb == mteb_code


def test_detects_arabic_passages():
    assert [detect_language(text) for text in ARABIC_TEXTS] == [Language("ar", "Arab")] * 2
    assert detect_language(ARABIC_TEXTS).mteb == "ara-Arab"


@pytest.mark.parametrize(
    ("text", "iso", "mteb_code"),
    [
        ("Le chat est sur la table et il dort dans la cuisine.", "fr", "fra-Latn"),
        ("Der Hund ist nicht im Haus, sondern mit den Kindern auf der Straße.", "de", "deu-Latn"),
        ("El perro de la casa es muy grande y no come con los niños.", "es", "spa-Latn"),
        ("Москва является столицей России.", "ru", "rus-Cyrl"),
        ("Київ є столицею України.", "uk", "ukr-Cyrl"),
        ("東京は日本の首都です。", "ja", "jpn-Jpan"),
        ("北京是中国的首都。", "zh", "zho-Hans"),
        ("서울은 한국의 수도입니다.", "ko", "kor-Hang"),
        ("boundary layer transition", "en", "eng-Latn"),
        ("12345 !!!", "und", "und-Zyyy"),
    ],
)
def test_detects_other_languages_and_scripts(text, iso, mteb_code):
    language = detect_language(text)
    assert (language.iso, language.mteb) == (iso, mteb_code)


def test_language_names_and_scripts():
    assert language_name("ar") == "Arabic"
    assert detect_language("ما هو طول نهر النيل").name == "Arabic"
    assert language_name("en") == "English"
    assert language_name("xx") == "the same language as the document"
    assert language_script("ar") == "Arab"
    assert language_script("fr") == "Latn"
    assert language_script("und") is None
    assert dominant_script("ما هو طول نهر النيل") == "Arab"
    assert dominant_script("what is lift") == "Latn"
    assert dominant_script("42") is None
    assert iso639_3("eng-Latn") == "eng"


def test_the_portable_framing_knows_the_same_styles():
    assert (*STYLES, "none") == PROMPT_STYLES
