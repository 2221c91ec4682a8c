"""Plain-text helpers for augmentation: words, sentences, n-gram overlap and normalisation (language detection lives
in :mod:`st_drama.languages`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from st_drama.languages import ALL_STOPWORDS

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
    return {word for word in words(text) if len(word) >= 3 and word not in ALL_STOPWORDS}


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
