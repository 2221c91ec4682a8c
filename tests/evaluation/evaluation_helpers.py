"""Tiny BEIR-layout folders whose answers are known, written by the evaluation tests (a helper module, not a
conftest: a second ``conftest`` module would shadow the root one that other tests import by name)."""

from __future__ import annotations

import json
from pathlib import Path

# Each query shares its words and its topic with exactly one document: any sensible retriever ranks it first.
TOPIC_DOCUMENTS = {
    "bread": ("Baking", "The chef baked fresh bread in a hot oven and served it with butter."),
    "galaxy": ("Astronomy", "Astronomers observed a distant galaxy through the large telescope at night."),
    "football": ("Sport", "The football team won the championship after scoring a late goal."),
    "python": ("Programming", "Python programmers write functions and fix bugs in their code every day."),
    "garden": ("Gardening", "The gardener planted tomatoes and watered the vegetable garden."),
    "weather": ("Weather", "Heavy rain and strong winds are expected in tomorrow's weather forecast."),
}
TOPIC_QUERIES = {
    "q-bread": "how to bake bread in an oven",
    "q-galaxy": "telescope pictures of a distant galaxy",
    "q-football": "which football team won the championship",
    "q-python": "fixing bugs in python code",
    "q-unjudged": "this query has no judgement and is not evaluated",
}
TOPIC_QRELS = [
    ("q-bread", "bread", 2),
    ("q-bread", "weather", 0),
    ("q-galaxy", "galaxy", 2),
    ("q-football", "football", 1),
    ("q-python", "python", 1),
]

# Document "framed-i" is the text "Query: " + TEXT_i, query i is TEXT_i. A DRAMA-style model embeds query i as
# "Query: TEXT_i": the same tokens as document "framed-i" (cosine 1) only when queries go through encode_query
# and documents through encode_document; framed as a document, query i matches "plain-i" instead.
FRAMING_TEXTS = [
    "pressure distribution on a swept wing at supersonic speed",
    "heat transfer in the laminar boundary layer of a flat plate",
    "buckling of thin cylindrical shells under axial compression",
]


def write_beir_folder(
    folder: Path,
    documents: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: list[tuple[str, str, int]],
) -> Path:
    """Write ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv``; ``documents`` maps id -> (title, text)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, (title, text) in documents.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_topics_folder(folder: Path) -> Path:
    return write_beir_folder(folder, TOPIC_DOCUMENTS, TOPIC_QUERIES, TOPIC_QRELS)


def write_framing_folder(folder: Path) -> Path:
    documents = {}
    for index, text in enumerate(FRAMING_TEXTS):
        documents[f"plain-{index}"] = ("", text)
        documents[f"framed-{index}"] = ("", f"Query: {text}")
    queries = {f"q{index}": text for index, text in enumerate(FRAMING_TEXTS)}
    qrels = [(f"q{index}", f"framed-{index}", 1) for index in range(len(FRAMING_TEXTS))]
    return write_beir_folder(folder, documents, queries, qrels)


def save_tiny_model(tiny_llama_dir: Path, folder: Path) -> Path:
    """A saved DRAMA-style SentenceTransformer folder on the tiny random Llama."""
    from st_drama import build_model

    build_model(str(tiny_llama_dir)).save(str(folder))
    return folder
