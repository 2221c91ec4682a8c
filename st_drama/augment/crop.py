"""Cropped-sentence queries: a random sentence of a document (or, without a usable sentence, a random word span)
used as the query, as in DRAMA's first data source."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .text import split_sentences

REJECT_NO_SPAN = "no usable sentence"


@dataclass(frozen=True)
class CropSettings:
    """Which sentences qualify as queries, and how long a fallback span is.

    Args:
        min_words: Shortest usable sentence (shorter ones, such as headings, are skipped).
        max_words: Longest usable sentence; longer sentences are cut to a random span of this many words.
        span_words: Length of the word span taken when no sentence qualifies.
    """

    min_words: int = 5
    max_words: int = 48
    span_words: int = 16


def crop_query(text: str, rng: random.Random, settings: CropSettings = CropSettings()) -> str | None:
    """A random sentence of ``text`` (or a random span when no sentence qualifies); None for texts too short.

    Args:
        text: The document.
        rng: Source of randomness; seed it per document so the choice does not depend on what else is processed.
        settings: Length limits.
    """
    sentences = [sentence.split() for sentence in split_sentences(text)]
    usable = [sentence for sentence in sentences if len(sentence) >= settings.min_words]
    if usable:
        return _random_span(rng.choice(usable), settings.max_words, rng)
    all_words = text.split()
    if len(all_words) < settings.min_words:
        return None
    return _random_span(all_words, settings.span_words, rng)


def _random_span(tokens: list[str], length: int, rng: random.Random) -> str:
    if len(tokens) <= length:
        return " ".join(tokens)
    start = rng.randrange(len(tokens) - length + 1)
    return " ".join(tokens[start : start + length])
