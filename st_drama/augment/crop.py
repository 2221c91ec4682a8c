"""Cropped-sentence queries: a random sentence of a document (or, without a usable sentence, a random word span)
used as the query, as in DRAMA's first data source.

When the query's own document is the row's positive, the crop is by default cut out of it (the inverse cloze task
of Lee et al., 2019): a positive that contains the query verbatim only teaches string matching.
"""

from __future__ import annotations

import random
import re

from .config import CropConfig
from .text import split_sentences

REJECT_NO_SPAN = "no usable sentence"


def crop_query(text: str, rng: random.Random, settings: CropConfig = CropConfig()) -> str | None:
    """A random sentence of ``text`` (or a random span when no sentence qualifies); None for texts too short.

    Args:
        text: The document.
        rng: Source of randomness; seed it per document so the choice does not depend on what else is processed.
        settings: Length limits.
    """
    crops = crop_queries(text, rng, settings, count=1)
    return crops[0] if crops else None


def crop_queries(text: str, rng: random.Random, settings: CropConfig = CropConfig(), count: int = 1) -> list[str]:
    """Up to ``count`` crops of ``text``, each from a different random sentence; a single random span when no
    sentence qualifies; none for texts too short. The first crop is the one :func:`crop_query` draws.

    Args:
        text: The document.
        rng: Source of randomness; seed it per document so the choice does not depend on what else is processed.
        settings: Length limits.
        count: Most crops to take.
    """
    sentences = [sentence.split() for sentence in split_sentences(text)]
    usable = [sentence for sentence in sentences if len(sentence) >= settings.min_words]
    if usable:
        crops = []
        # Sentence then span, crop by crop: the first crop is drawn exactly as a single crop would be.
        while usable and len(crops) < count:
            sentence = usable.pop(rng.randrange(len(usable)))
            crops.append(_random_span(sentence, settings.max_words, rng))
        return crops
    all_words = text.split()
    if len(all_words) < settings.min_words:
        return []
    return [_random_span(all_words, settings.span_words, rng)]


def _random_span(tokens: list[str], length: int, rng: random.Random) -> str:
    if len(tokens) <= length:
        return " ".join(tokens)
    start = rng.randrange(len(tokens) - length + 1)
    return " ".join(tokens[start : start + length])


def without_crop(text: str, crop: str, min_words: int = CropConfig.min_words, title: str = "") -> str:
    """``text`` with every occurrence of ``crop`` cut out (a title repeated in the body holds it twice); ``text``
    itself when the crop does not occur in it or fewer than ``min_words`` words would remain (a one-sentence document
    stays its own positive).

    Args:
        text: The crop's document.
        crop: The query cropped from it (its words joined by single spaces, whatever whitespace ``text`` has).
        min_words: Fewest words the remaining context must keep.
        title: The document's title: it stays at the front even when the crop covered it, as the inverse cloze
            task keeps each context's title (an entity's abstract without its name no longer says what it is about).
    """
    crop_words = crop.split()
    if not crop_words:
        return text
    # Whole words only: the crop "the wing" must not eat the end of "lathe wing".
    occurrence = re.compile(r"\s*(?<!\S)" + r"\s+".join(re.escape(word) for word in crop_words) + r"(?!\S)\s*")
    context = occurrence.sub(" ", text).strip()
    if context == text.strip() or len(context.split()) < min_words:
        return text
    title = title.strip()
    if title and not context.startswith(title):
        context = f"{title} {context}"
    return context
