"""Do keyword pseudo-queries teach the lexical matching that crop queries do not? Training rows where the query is
a few rare words of one sentence and the positive is the whole document (the words stay in it), alone or mixed
with an augment folder's cut-crop rows, written as JSONL for ``st-drama train`` / ``experiments/recipe_sweep.py``.

A keyword query holds 2-6 words of one sentence (at least five words long) whose document frequency is under 10% of
the corpus (a language-independent stop-word filter), drawn with weights ln(N / df) + 0.1 and kept in sentence
order; its hard negative is a random BM25 result from ranks 30-50 other than its own document (DRAMA's ranks).

    st-drama pipeline ../shared/data/arcd_ar_subset runs/ar64 --train-steps 64 --crops-per-doc 16
    .venv/bin/python experiments/keyword_queries.py ../shared/data/arcd_ar_subset runs/ar-kw.jsonl \\
        --crop-rows runs/ar64/augment/data
    .venv/bin/python experiments/recipe_sweep.py runs/ar-kw runs/ar-kw.jsonl \\
        --collection ../shared/data/arcd_ar_subset --only llara_lr2e-4_t0.02 --steps 64
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections import Counter
from pathlib import Path

from st_drama.augment.mining import BM25Retriever
from st_drama.augment.text import split_sentences
from st_drama.corpus import Document, ReadReport, load_corpus
from st_drama.languages import corpus_language
from st_drama.training.data import load_training_data

MAX_DOCUMENT_SHARE = 0.1
QUERY_WORDS = (2, 6)
MIN_SENTENCE_WORDS = 5
NEGATIVE_RANKS = (30, 50)
# Whitespace words with edge punctuation removed: a \w+ split would break Arabic words at their diacritics.
EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def words(text: str) -> list[str]:
    return [word for word in (EDGE_PUNCTUATION.sub("", token) for token in text.split()) if word]


def document_frequencies(documents: list[Document]) -> Counter[str]:
    return Counter(word for document in documents for word in set(words(document.full_text)))


def keyword_query(sentence: str, frequencies: Counter[str], num_documents: int, rng: random.Random) -> str | None:
    sentence_words = words(sentence)
    if len(sentence_words) < MIN_SENTENCE_WORDS:
        return None
    rare = [word for word in sentence_words if frequencies[word] / num_documents < MAX_DOCUMENT_SHARE]
    if len(rare) < QUERY_WORDS[0]:
        return None
    weights = [math.log(num_documents / frequencies[word]) + 0.1 for word in rare]
    count = min(len(rare), rng.randint(*QUERY_WORDS))
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(rng.choices(range(len(rare)), weights)[0])
    return " ".join(rare[position] for position in sorted(chosen))


def keyword_rows(
    documents: list[Document], language: str, seed: int = 0, per_document: int | None = None
) -> list[dict[str, str]]:
    rng = random.Random(seed)
    frequencies = document_frequencies(documents)
    queries, owners = [], []
    for index, document in enumerate(documents):
        sentences = split_sentences(document.full_text)
        document_queries = [keyword_query(sentence, frequencies, len(documents), rng) for sentence in sentences]
        document_queries = [query for query in document_queries if query is not None]
        if per_document is not None and len(document_queries) > per_document:
            document_queries = rng.sample(document_queries, per_document)
        queries.extend(document_queries)
        owners.extend([index] * len(document_queries))
    retriever = BM25Retriever(documents, english_stopwords=language == "en")
    ranked, _ = retriever.search(queries, top_k=NEGATIVE_RANKS[1])
    rows = []
    for query, owner, ranks in zip(queries, owners, ranked, strict=True):
        pool = [rank for rank in ranks[NEGATIVE_RANKS[0] - 1 :] if rank != owner] or [
            rank for rank in ranks if rank != owner
        ]
        rows.append(
            {
                "query": query,
                "positive": documents[owner].full_text,
                "negative_1": documents[rng.choice(pool)].full_text,
                "source": "keywords",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", help="BEIR folder whose corpus.jsonl the queries are drawn from.")
    parser.add_argument("output", help="JSONL file of training rows.")
    parser.add_argument("--crop-rows", help="An augment folder whose rows are mixed in (omit for keywords alone).")
    parser.add_argument(
        "--language", help="Corpus language for BM25 ('en' removes stop words; default: detected, as augment does)."
    )
    parser.add_argument("--per-document", type=int, help="Most keyword rows per document (default: one a sentence).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    report = ReadReport()
    documents = load_corpus(args.collection, skip_malformed=True, report=report)
    if report.total_skipped:
        print(f"skipped {report.total_skipped} corpus rows: {report.skipped}")
    language = args.language or corpus_language(document.full_text for document in documents).iso
    rows = keyword_rows(documents, language, args.seed, args.per_document)
    crop_rows = []
    if args.crop_rows:
        crops = load_training_data(args.crop_rows, num_negatives=1)
        crop_rows = [
            {"query": row["query"], "positive": row["positive"], "negative_1": row["negative_1"], "source": "crop"}
            for row in crops
        ]
    mixed = rows + crop_rows
    random.Random(args.seed).shuffle(mixed)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in mixed)
    print(f"{len(rows)} keyword rows and {len(crop_rows)} crop rows -> {output}")
    for row in rows[:5]:
        print("  ", row["query"])


if __name__ == "__main__":
    main()
