"""Plain-text helpers for augmentation: words, sentences, n-gram overlap, normalisation and language detection.

Language detection is deliberately small: the dominant Unicode script names the language for most scripts (Arabic,
Cyrillic, CJK, Devanagari, ...), and for Latin-script text a stop-word vote picks among a few common languages. It is
good enough to tell the LLM which language to write in and to reject a query written in the wrong script; it is not
a general-purpose language identifier.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

UNKNOWN_LANGUAGE = "und"

LANGUAGE_NAMES = {
    "ar": "Arabic",
    "fa": "Persian",
    "ur": "Urdu",
    "ru": "Russian",
    "uk": "Ukrainian",
    "el": "Greek",
    "he": "Hebrew",
    "hi": "Hindi",
    "bn": "Bengali",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "ko": "Korean",
    "ja": "Japanese",
    "zh": "Chinese",
    "hy": "Armenian",
    "ka": "Georgian",
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "sv": "Swedish",
    "id": "Indonesian",
    UNKNOWN_LANGUAGE: "the same language as the document",
}

# Unicode character-name prefixes of the scripts we recognise (unicodedata names start with the script).
_SCRIPT_PREFIXES = (
    ("ARABIC", "arabic"),
    ("CYRILLIC", "cyrillic"),
    ("GREEK", "greek"),
    ("HEBREW", "hebrew"),
    ("DEVANAGARI", "devanagari"),
    ("BENGALI", "bengali"),
    ("TAMIL", "tamil"),
    ("TELUGU", "telugu"),
    ("THAI", "thai"),
    ("HANGUL", "hangul"),
    ("HIRAGANA", "kana"),
    ("KATAKANA", "kana"),
    ("CJK", "han"),
    ("ARMENIAN", "armenian"),
    ("GEORGIAN", "georgian"),
    ("LATIN", "latin"),
)

_SCRIPT_LANGUAGE = {
    "arabic": "ar",
    "cyrillic": "ru",
    "greek": "el",
    "hebrew": "he",
    "devanagari": "hi",
    "bengali": "bn",
    "tamil": "ta",
    "telugu": "te",
    "thai": "th",
    "hangul": "ko",
    "kana": "ja",
    "han": "zh",
    "armenian": "hy",
    "georgian": "ka",
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

_ALL_STOPWORDS = set().union(*_STOPWORD_SETS.values())
_ABBREVIATION_END = re.compile(
    r"(?:^|[\s(-])(?:\w|al|approx|cf|dr|eq|eqs|etc|fig|figs|ft|in|mr|mrs|no|nos|ref|refs|vol|vs|e\.g|i\.e)\.$",
    re.IGNORECASE,
)
_WORD_PATTERN = re.compile(r"\w+", re.UNICODE)
# Sentence ends: Latin/Arabic/CJK full stops, question and exclamation marks, followed by space (or a CJK stop).
_SENTENCE_END = re.compile(r"(?<=[.!?\u061f\u06d4\u3002\uff01\uff1f])\s+|(?<=[\u3002\uff01\uff1f])|\n+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters and digits)."""
    return _WORD_PATTERN.findall(text.lower())


def normalize_text(text: str) -> str:
    """Lower-cased words joined by single spaces: the key for duplicate detection."""
    return " ".join(words(unicodedata.normalize("NFKC", text)))


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after ``. ! ? ؟ 。`` followed by whitespace, and at line breaks), not after
    initials and common abbreviations (``h.``, ``fig.``, ``e.g.``, ``12-in.``)."""
    sentences: list[str] = []
    pending = ""
    for piece in _SENTENCE_END.split(text):
        piece = f"{pending} {piece.strip()}".strip() if pending else piece.strip()
        if _ABBREVIATION_END.search(piece):
            pending = piece
            continue
        pending = ""
        if piece:
            sentences.append(piece)
    if pending:
        sentences.append(pending)
    return sentences


def content_words(text: str) -> set[str]:
    """Words of three or more characters that are not frequent function words (in the languages we know)."""
    return {word for word in words(text) if len(word) >= 3 and word not in _ALL_STOPWORDS}


def content_stems(text: str, length: int = 4) -> set[str]:
    """The first ``length`` characters of each content word: a crude stem, so ``heating`` meets ``heat``."""
    return {word[:length] for word in content_words(text)}


def ngrams(tokens: list[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[start : start + size]) for start in range(len(tokens) - size + 1)]


def ngram_overlap(query: str, document: str, size: int) -> float:
    """Fraction of the query's word ``size``-grams that also occur in the document (0.0 when the query has none)."""
    query_ngrams = ngrams(words(query), size)
    if not query_ngrams:
        return 0.0
    document_ngrams = set(ngrams(words(document), size))
    return sum(gram in document_ngrams for gram in query_ngrams) / len(query_ngrams)


def most_repeated_ngram_count(text: str, size: int) -> int:
    """How often the most frequent word ``size``-gram occurs (degenerate LLM loops repeat one many times)."""
    counts = Counter(ngrams(words(text), size))
    return max(counts.values(), default=0)


def dominant_script(text: str) -> str | None:
    """The script most letters of ``text`` belong to (``"latin"``, ``"arabic"``, ...), or None without letters."""
    counts: Counter[str] = Counter()
    for character in text:
        if character.isalpha():
            counts[_script_of(character)] += 1
    counts.pop("other", None)
    if not counts:
        return None
    return counts.most_common(1)[0][0]


def _script_of(character: str) -> str:
    name = unicodedata.name(character, "")
    for prefix, script in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    return "other"


def detect_language(text: str) -> str:
    """An ISO 639-1 code for the language of ``text`` (``"en"``, ``"ar"``, ...), or ``"und"`` when unsure."""
    script = dominant_script(text)
    if script is None:
        return UNKNOWN_LANGUAGE
    if script == "latin":
        return _latin_language(text)
    if script == "arabic":
        return _arabic_script_language(text)
    if script == "cyrillic" and any(character in _UKRAINIAN_LETTERS for character in text.lower()):
        return "uk"
    if script == "han" and any(_script_of(character) == "kana" for character in text):
        return "ja"
    return _SCRIPT_LANGUAGE.get(script, UNKNOWN_LANGUAGE)


def _latin_language(text: str) -> str:
    tokens = words(text)
    votes = {language: sum(token in stopwords for token in tokens) for language, stopwords in _STOPWORD_SETS.items()}
    best_language, best_votes = max(votes.items(), key=lambda item: item[1])
    if best_votes == 0:
        # Keyword-style Latin text without function words: English is by far the most likely.
        return "en"
    return best_language


def _arabic_script_language(text: str) -> str:
    letters = set(text)
    if letters & _URDU_LETTERS:
        return "ur"
    if letters & _PERSIAN_LETTERS and "ة" not in letters:
        return "fa"
    return "ar"


def language_script(language: str) -> str | None:
    """The script a language is written in, or None when unknown."""
    if language in _STOPWORD_SETS:
        return "latin"
    if language in ("fa", "ur"):
        return "arabic"
    if language == "uk":
        return "cyrillic"
    if language == "ja":
        return None  # Japanese mixes kana and han; no single script to compare with.
    for script, code in _SCRIPT_LANGUAGE.items():
        if code == language:
            return script
    return None


def language_name(language: str) -> str:
    """English name of a language code, for prompts (``"ar"`` -> ``"Arabic"``)."""
    return LANGUAGE_NAMES.get(language, LANGUAGE_NAMES[UNKNOWN_LANGUAGE])
