"""Language detection, the one home for it: the ISO 639-1 code (LLM prompts, BM25 stopwords, the script a
synthetic query must be written in) and the MTEB code (``"eng-Latn"``, a task's language) of a text or a corpus.

Deliberately small: the dominant Unicode script names the language for most scripts (Arabic, CJK, Devanagari, ...);
for Latin and Cyrillic text a vote over frequent function words picks among a few common languages. Good enough to
tell an LLM which language to write in, to reject a query in the wrong script and to label a test collection; pass
the language explicitly where it matters more.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

UNDETERMINED = "und"
# A corpus is judged on at most this much text (an evenly spaced sample of its documents).
MAX_SAMPLE_CHARACTERS = 200_000

# ISO 639-1 -> (ISO 639-3, English name).
_LANGUAGES = {
    "ar": ("ara", "Arabic"),
    "fa": ("fas", "Persian"),
    "ur": ("urd", "Urdu"),
    "ru": ("rus", "Russian"),
    "uk": ("ukr", "Ukrainian"),
    "el": ("ell", "Greek"),
    "he": ("heb", "Hebrew"),
    "hi": ("hin", "Hindi"),
    "bn": ("ben", "Bengali"),
    "ta": ("tam", "Tamil"),
    "te": ("tel", "Telugu"),
    "th": ("tha", "Thai"),
    "ko": ("kor", "Korean"),
    "ja": ("jpn", "Japanese"),
    "zh": ("zho", "Chinese"),
    "hy": ("hye", "Armenian"),
    "ka": ("kat", "Georgian"),
    "en": ("eng", "English"),
    "fr": ("fra", "French"),
    "de": ("deu", "German"),
    "es": ("spa", "Spanish"),
    "it": ("ita", "Italian"),
    "pt": ("por", "Portuguese"),
    "nl": ("nld", "Dutch"),
    "sv": ("swe", "Swedish"),
    "id": ("ind", "Indonesian"),
}
UNKNOWN_LANGUAGE_NAME = "the same language as the document"

# First word of a letter's Unicode name -> ISO 15924 script code.
_SCRIPTS = {
    "LATIN": "Latn",
    "ARABIC": "Arab",
    "CYRILLIC": "Cyrl",
    "GREEK": "Grek",
    "HEBREW": "Hebr",
    "DEVANAGARI": "Deva",
    "BENGALI": "Beng",
    "TAMIL": "Taml",
    "TELUGU": "Telu",
    "THAI": "Thai",
    "HANGUL": "Hang",
    "HIRAGANA": "Jpan",
    "KATAKANA": "Jpan",
    "CJK": "Hans",
    "ARMENIAN": "Armn",
    "GEORGIAN": "Geor",
}
# The language a script names when nothing else decides.
_SCRIPT_LANGUAGE = {
    "Arab": "ar",
    "Cyrl": "ru",
    "Grek": "el",
    "Hebr": "he",
    "Deva": "hi",
    "Beng": "bn",
    "Taml": "ta",
    "Telu": "te",
    "Thai": "th",
    "Hang": "ko",
    "Jpan": "ja",
    "Hans": "zh",
    "Armn": "hy",
    "Geor": "ka",
}
_PERSIAN_LETTERS = set("پچژگکی")
_URDU_LETTERS = set("ٹڈڑےں")
_UKRAINIAN_LETTERS = set("іїєґ")

# A few very frequent function words per Latin-script language; a vote over them names the language.
_STOPWORDS = {
    "en": (
        "the of and to in is that for it with as was on are by this be from or which an at have not what how why "
        "when where who does did can could would should will about into than then there their these those has had "
        "were been being its any some such"
    ).split(),
    "fr": "le la les de des du et est une un que qui dans pour pas sur au avec ce il elle sont".split(),
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf für im dem auch es".split(),
    "es": "el la los las de del y que en un una es por con para se no su al lo como más".split(),
    "it": "il lo la gli le di del della e che è un una per non con si da al sono".split(),
    "pt": "o a os as de do da e que em um uma é para com não se por mais dos das".split(),
    "nl": "de het een en van is dat op te in zijn voor met niet er aan ook als".split(),
    "sv": "och att det som en är på för med den av till inte har de ett om".split(),
    "id": "dan yang di ini itu dengan untuk dari dalam tidak akan pada adalah ke juga".split(),
}
_STOPWORD_SETS = {language: set(words) for language, words in _STOPWORDS.items()}
ALL_STOPWORDS = frozenset().union(*_STOPWORD_SETS.values())
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Language:
    """A detected language.

    Args:
        iso: ISO 639-1 code (``"en"``, ``"ar"``), ``"und"`` when unsure.
        script: ISO 15924 code of the dominant script (``"Latn"``, ``"Arab"``), ``"Zyyy"`` without letters.
    """

    iso: str
    script: str

    @property
    def mteb(self) -> str:
        """MTEB's language code, ISO 639-3 and script: ``"eng-Latn"``."""
        return f"{_LANGUAGES.get(self.iso, (UNDETERMINED,))[0]}-{self.script}"

    @property
    def name(self) -> str:
        """English name for prompts (``"Arabic"``)."""
        return language_name(self.iso)

    @property
    def is_english(self) -> bool:
        return self.iso == "en"


def detect_language(text: str | Iterable[str]) -> Language:
    """The language of a text, or of several texts taken together (at most 200,000 characters are read)."""
    sample = text if isinstance(text, str) else _joined(text)
    sample = sample[:MAX_SAMPLE_CHARACTERS]
    script = dominant_script(sample)
    if script is None:
        return Language(UNDETERMINED, "Zyyy")
    return Language(_language_in_script(sample, script), script)


def corpus_language(texts: Iterable[str], sample: int = 200, characters_per_text: int = 1000) -> Language:
    """The most common language over an evenly spaced sample of ``texts`` (the same sample whichever part of the
    corpus a process works on)."""
    texts = list(texts)
    if not texts:
        return Language(UNDETERMINED, "Zyyy")
    step = max(1, len(texts) // sample)
    languages = Counter(detect_language(text[:characters_per_text]) for text in texts[::step])
    return languages.most_common(1)[0][0]


def dominant_script(text: str) -> str | None:
    """ISO 15924 code of the script most letters of ``text`` belong to, or None without letters."""
    counts: Counter[str] = Counter()
    for character in text:
        if character.isalpha():
            script = _script_of(character)
            if script is not None:
                counts[script] += 1
    if not counts:
        return None
    if counts["Hans"] and counts["Jpan"]:  # Japanese mixes kana and kanji
        counts["Jpan"] += counts.pop("Hans")
    return counts.most_common(1)[0][0]


def language_script(iso: str) -> str | None:
    """The ISO 15924 script a language is written in, or None when unknown (or mixed, as Japanese)."""
    if iso in _STOPWORD_SETS:
        return "Latn"
    if iso in ("fa", "ur"):
        return "Arab"
    if iso == "uk":
        return "Cyrl"
    if iso == "ja":
        return None
    return next((script for script, language in _SCRIPT_LANGUAGE.items() if language == iso), None)


def language_name(iso: str) -> str:
    """English name of an ISO 639-1 code, for prompts (``"ar"`` -> ``"Arabic"``)."""
    return _LANGUAGES[iso][1] if iso in _LANGUAGES else UNKNOWN_LANGUAGE_NAME


def iso639_3(mteb_code: str) -> str:
    """``"eng-Latn"`` -> ``"eng"``."""
    return mteb_code.split("-", 1)[0]


def _joined(texts: Iterable[str]) -> str:
    parts: list[str] = []
    size = 0
    for text in texts:
        parts.append(text)
        size += len(text) + 1
        if size >= MAX_SAMPLE_CHARACTERS:
            break
    return "\n".join(parts)


def _script_of(character: str) -> str | None:
    name = unicodedata.name(character, "")
    return _SCRIPTS.get(name.split(" ", 1)[0]) if name else None


def _language_in_script(text: str, script: str) -> str:
    if script == "Latn":
        return _latin_language(text)
    if script == "Arab":
        letters = set(text)
        if letters & _URDU_LETTERS:
            return "ur"
        if letters & _PERSIAN_LETTERS and "ة" not in letters:
            return "fa"
        return "ar"
    if script == "Cyrl" and any(character in _UKRAINIAN_LETTERS for character in text.lower()):
        return "uk"
    return _SCRIPT_LANGUAGE.get(script, UNDETERMINED)


def _latin_language(text: str) -> str:
    tokens = _WORD.findall(text.lower())
    votes = {language: sum(token in stopwords for token in tokens) for language, stopwords in _STOPWORD_SETS.items()}
    best_language, best_votes = max(votes.items(), key=lambda item: item[1])
    # Keyword-style Latin text without function words: English is by far the most likely.
    return best_language if best_votes else "en"
