"""How much word matching survives an LLM's tokenizer? BM25 over a collection's words (bm25s' tokenizer and its
English stop words, the package's BM25 baseline) against BM25 over the LLM's token pieces, whole and with each
document cut to its first N pieces, as the dense model reads it. Scored with pytrec_eval's nDCG@10, as MTEB scores
retrieval.

A dense model that reads a language through pieces that carry no word identity has to compose words from them
before it can match them; BM25 over the pieces shows how much matching the pieces give for free.

    .venv/bin/python experiments/subword_bm25.py ../shared/data/arcd_ar_subset --max-pieces 128
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import bm25s
import numpy as np
import pytrec_eval
from transformers import AutoTokenizer

from st_drama.corpus import load_corpus, load_qrels, load_queries, resolve_collection_path
from st_drama.default_llm import DEFAULT_LLM_NAME, resolve_model_path


def bm25_ndcg_at_10(
    documents: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]], split: Callable
) -> float:
    """Mean nDCG@10 over the judged queries of BM25 (bm25s, Lucene variant) on ``split``'s terms."""
    document_ids = list(documents)
    retriever = bm25s.BM25()
    retriever.index([split(text) for text in documents.values()], show_progress=False)
    judged = [query_id for query_id in queries if query_id in qrels]
    run = {}
    for query_id in judged:
        indices, scores = retriever.retrieve(
            [split(queries[query_id])], k=min(100, len(documents)), show_progress=False
        )
        run[query_id] = {document_ids[i]: float(s) for i, s in zip(indices[0], scores[0], strict=True) if s > 0}
    evaluator = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in judged}, {"ndcg_cut.10"})
    return float(np.mean([scores["ndcg_cut_10"] for scores in evaluator.evaluate(run).values()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", help="BEIR-layout folder, or 'cranfield'.")
    parser.add_argument("--model", default=DEFAULT_LLM_NAME, help="LLM whose tokenizer splits the texts.")
    parser.add_argument("--max-pieces", type=int, default=128, help="Pieces of each document the cut row keeps.")
    args = parser.parse_args()

    folder = resolve_collection_path(args.collection)
    documents = {document.doc_id: document.full_text for document in load_corpus(folder, keep_empty=True)}
    queries = load_queries(folder)
    qrels = load_qrels(folder)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model))

    def words(text: str) -> list[str]:
        return bm25s.tokenize(text, return_ids=False, show_progress=False)[0]

    def piece_ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def pieces(text: str) -> list[str]:
        return [str(piece) for piece in piece_ids(text)]

    pieces_by_document = {doc_id: piece_ids(text) for doc_id, text in documents.items()}
    cut_documents = {doc_id: tokenizer.decode(ids[: args.max_pieces]) for doc_id, ids in pieces_by_document.items()}
    document_pieces = list(pieces_by_document.values())
    distinct_pieces = {piece for ids in document_pieces for piece in ids}
    one_character = sum(len(tokenizer.decode([piece]).strip()) <= 1 for ids in document_pieces for piece in ids)
    print(
        f"{folder.name}: {len(documents)} documents, {len(qrels)} judged queries; a document's median: "
        f"{np.median([len(words(text)) for text in documents.values()]):.0f} words, "
        f"{np.median([len(ids) for ids in document_pieces]):.0f} pieces; {len(distinct_pieces)} distinct pieces, "
        f"{one_character / sum(map(len, document_pieces)):.1%} of the corpus's pieces one character or less"
    )
    rows = [
        ("BM25 on words (bm25s' tokenizer and English stop words)", documents, words),
        (f"BM25 on {args.model} pieces", documents, pieces),
        (f"BM25 on {args.model} pieces, documents cut to {args.max_pieces} pieces", cut_documents, pieces),
    ]
    print("| terms | nDCG@10 |\n|---|---|")
    for label, texts, split in rows:
        print(f"| {label} | {bm25_ndcg_at_10(texts, queries, qrels, split):.3f} |")


if __name__ == "__main__":
    main()
