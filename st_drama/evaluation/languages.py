"""Guessing a collection's language as an MTEB language code (``"eng-Latn"``) from its text.

The script comes from the Unicode names of the letters; for scripts shared by many languages (Latin, Cyrillic) the
language is the one whose stopword list covers the largest share of the words. Good enough to label a test
collection and to pick BM25's stopwords; pass the language explicitly when it matters.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

UNDETERMINED = "und"
# First word of a letter's Unicode name -> (ISO 15924 script, the language assumed when nothing better is known).
SCRIPT_DEFAULTS: dict[str, tuple[str, str]] = {
    "LATIN": ("Latn", UNDETERMINED),
    "CYRILLIC": ("Cyrl", UNDETERMINED),
    "ARABIC": ("Arab", "ara"),
    "GREEK": ("Grek", "ell"),
    "HEBREW": ("Hebr", "heb"),
    "DEVANAGARI": ("Deva", "hin"),
    "BENGALI": ("Beng", "ben"),
    "TAMIL": ("Taml", "tam"),
    "THAI": ("Thai", "tha"),
    "HANGUL": ("Hang", "kor"),
    "HIRAGANA": ("Jpan", "jpn"),
    "KATAKANA": ("Jpan", "jpn"),
    "CJK": ("Hans", "zho"),
    "ARMENIAN": ("Armn", "hye"),
    "GEORGIAN": ("Geor", "kat"),
}
# bm25s stopword lists and the ISO 639-3 code each stands for.
STOPWORD_LISTS = {
    "STOPWORDS_EN": "eng",
    "STOPWORDS_GERMAN": "deu",
    "STOPWORDS_DUTCH": "nld",
    "STOPWORDS_FRENCH": "fra",
    "STOPWORDS_SPANISH": "spa",
    "STOPWORDS_PORTUGUESE": "por",
    "STOPWORDS_ITALIAN": "ita",
    "STOPWORDS_SWEDISH": "swe",
    "STOPWORDS_NORWEGIAN": "nob",
    "STOPWORDS_DANISH": "dan",
    "STOPWORDS_TURKISH": "tur",
    "STOPWORDS_RUSSIAN": "rus",
}
# A language is named only when its stopwords make up at least this share of the words (running text in a language
# is 20-50% stopwords; English's short list of 33 words still covers over 15%).
MIN_STOPWORD_SHARE = 0.08
MAX_CHARACTERS = 200_000
_WORD = re.compile(r"\w+", re.UNICODE)


def detect_language(texts: Iterable[str]) -> str:
    """The MTEB language code (``"eng-Latn"``, ``"ara-Arab"``, ``"und-Latn"`` when unsure) of ``texts``.

    Reads at most the first 200,000 characters.
    """
    sample = _sample(texts)
    script_name = _dominant_script(sample)
    if script_name is None:
        return f"{UNDETERMINED}-Zyyy"
    script, language = SCRIPT_DEFAULTS.get(script_name, ("Zyyy", UNDETERMINED))
    if script_name == "CJK" and _has_kana(sample):
        script, language = "Jpan", "jpn"
    if script in ("Latn", "Cyrl"):
        language = _language_by_stopwords(sample) or language
    return f"{language}-{script}"


def iso_language(code: str) -> str:
    """``"eng-Latn"`` -> ``"eng"``."""
    return code.split("-", 1)[0]


def _sample(texts: Iterable[str]) -> str:
    parts: list[str] = []
    size = 0
    for text in texts:
        parts.append(text)
        size += len(text)
        if size >= MAX_CHARACTERS:
            break
    return "\n".join(parts)[:MAX_CHARACTERS]


def _dominant_script(text: str) -> str | None:
    counts: Counter[str] = Counter()
    for character in text:
        if character.isalpha():
            name = unicodedata.name(character, "")
            if name:
                counts[name.split(" ", 1)[0]] += 1
    if not counts:
        return None
    return counts.most_common(1)[0][0]


def _has_kana(text: str) -> bool:
    return any(unicodedata.name(c, "").startswith(("HIRAGANA", "KATAKANA")) for c in text if c.isalpha())


def _language_by_stopwords(text: str) -> str | None:
    from bm25s import tokenization

    words = [word.lower() for word in _WORD.findall(text)]
    if not words:
        return None
    shares = {}
    for list_name, language in STOPWORD_LISTS.items():
        stopwords = set(getattr(tokenization, list_name, ()))
        if stopwords:
            shares[language] = sum(word in stopwords for word in words) / len(words)
    best = max(shares, key=shares.__getitem__, default=None)
    if best is None or shares[best] < MIN_STOPWORD_SHARE:
        return None
    return best
