"""Is the LLM's query likelihood log p(query | document) a useful reranker (and so a teacher) on every shared
collection? BM25's top documents for a sample of judged queries, reranked by
:class:`st_drama.augment.rerank.QueryLikelihoodReranker` and fused with BM25's scores, against BM25's own order.

Only the top ``--depth`` documents are reordered, so Recall@depth is the same for all rows; nDCG@10 (trec_eval's,
by pytrec_eval) is over the sampled queries only, for every row alike. One JSON record per collection in
``OUT/COLLECTION.json`` (a finished collection is skipped when rerun); the table is printed and written to
``OUT/query_likelihood.md``.

    OMP_NUM_THREADS=2 python experiments/query_likelihood.py runs/levers/query-likelihood --queries 50
"""

from __future__ import annotations

import argparse
import json
import random
import runpy
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The LLM's share of the fused score (relative score fusion with BM25).
LLM_WEIGHTS = (0.3, 0.5)


def collection_path(name: str, shared_data: Path) -> Path:
    from st_drama.corpus import bundled_collection

    shared = shared_data / name
    return shared if shared.exists() else bundled_collection(name)


def benchmark_constants() -> dict:
    """The quality benchmark's module globals: its ``COLLECTIONS`` and ``SHARED_DATA`` (one list of the suite)."""
    return runpy.run_path(str(REPO / "benchmarks" / "quality.py"))


def ndcg_at_10(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator({query: qrels[query] for query in run}, {"ndcg_cut.10"})
    per_query = evaluator.evaluate(run)
    return sum(scores["ndcg_cut_10"] for scores in per_query.values()) / len(per_query)


def measure(name: str, folder: Path, reranker, num_queries: int, depth: int, seed: int) -> dict:
    from st_drama.bm25 import BM25Index
    from st_drama.corpus import load_corpus, load_qrels, load_queries
    from st_drama.evaluation.hybrid import FusionConfig, fuse
    from st_drama.languages import corpus_language

    documents = load_corpus(folder)
    texts = [document.full_text for document in documents]
    ids = [document.doc_id for document in documents]
    queries, qrels = load_queries(folder), load_qrels(folder)
    judged = sorted(query_id for query_id in qrels if query_id in queries)
    sample = sorted(random.Random(seed).sample(judged, min(num_queries, len(judged))))
    english = corpus_language(texts).is_english
    ranked, scores = BM25Index(texts, english_stopwords=english).search([queries[q] for q in sample], depth)

    started = time.perf_counter()
    orders_scores = reranker.scores([queries[q] for q in sample], [[texts[i] for i in row] for row in ranked])
    seconds = time.perf_counter() - started

    runs: dict[str, dict[str, dict[str, float]]] = {"bm25": {}, "likelihood": {}}
    runs.update({f"bm25 + likelihood rsf-{weight:g}": {} for weight in LLM_WEIGHTS})
    for query_id, row, bm25_scores, llm_scores in zip(sample, ranked, scores, orders_scores, strict=True):
        bm25 = {ids[index]: float(score) for index, score in zip(row, bm25_scores, strict=True)}
        llm = {ids[index]: float(score) for index, score in zip(row, llm_scores, strict=True)}
        runs["bm25"][query_id] = bm25
        runs["likelihood"][query_id] = llm
        for weight in LLM_WEIGHTS:
            fusion = FusionConfig(method="rsf", dense_weight=weight)
            runs[f"bm25 + likelihood rsf-{weight:g}"][query_id] = fuse([llm, bm25], fusion)
    return {
        "collection": name,
        "queries": len(sample),
        "depth": depth,
        "pairs": sum(len(row) for row in ranked),
        "rerank_seconds": round(seconds, 1),
        "ndcg@10": {label: round(ndcg_at_10(run, qrels), 4) for label, run in runs.items()},
    }


def table(records: list[dict]) -> str:
    labels = list(records[0]["ndcg@10"])
    lines = [
        "| collection | queries | " + " | ".join(labels) + " | seconds |",
        "|---|---|" + "---|" * len(labels) + "---|",
    ]
    for record in records:
        cells = [f"{record['ndcg@10'][label]:.3f}" for label in labels]
        lines.append(
            f"| {record['collection']} | {record['queries']} | "
            + " | ".join(cells)
            + f" | {record['rerank_seconds']:.0f} |"
        )
    means = [sum(record["ndcg@10"][label] for record in records) / len(records) for label in labels]
    lines.append("| **mean** | | " + " | ".join(f"**{mean:.3f}**" for mean in means) + " | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--collections", default=None, help="Comma-separated (default: the quality benchmark's).")
    parser.add_argument("--queries", type=int, default=50, help="Judged queries sampled per collection.")
    parser.add_argument("--depth", type=int, default=20, help="BM25 documents reranked per query.")
    parser.add_argument("--max-passage-words", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    benchmark = benchmark_constants()
    collections = args.collections.split(",") if args.collections else list(benchmark["COLLECTIONS"])

    from st_drama import default_llm_path
    from st_drama.augment.llm import TransformersChatLM
    from st_drama.augment.rerank import QueryLikelihoodReranker, RerankConfig

    reranker = QueryLikelihoodReranker(
        TransformersChatLM(default_llm_path(), batch_size=args.batch_size),
        RerankConfig(max_passage_words=args.max_passage_words),
    )
    args.output.mkdir(parents=True, exist_ok=True)
    records = []
    for name in collections:
        path = args.output / f"{name}.json"
        if not path.exists():
            folder = collection_path(name, benchmark["SHARED_DATA"])
            record = measure(name, folder, reranker, args.queries, args.depth, args.seed)
            path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            print(json.dumps(record), flush=True)
        records.append(json.loads(path.read_text(encoding="utf-8")))
    text = table(records)
    (args.output / "query_likelihood.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
