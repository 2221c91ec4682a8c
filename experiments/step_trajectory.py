"""How nDCG@10 moves over a `full` training: the `full` preset's rows and schedule (192 steps, learning rate
decaying over all of them), the model scored every few steps and the run stopped early. Written to ask why Hindi
falls from `quick`'s 0.191 to `full`'s 0.073 while German rises.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/step_trajectory.py runs/trajectory/hi ../shared/data/xquadr_hi
    ... --one-sentence-spans   # one-sentence documents give a span of half their words, cut out of the positive

On a corpus of one-sentence documents (XQuAD-R) the crop of a document is the whole document, which stays its own
positive (`without_crop` keeps the document whole when fewer than five words would remain): every row pairs a text
with itself, so the training learns only to give a text the same vector under the query and the document framing.
``--one-sentence-spans`` replaces each such self-pair's query with a random span of half the sentence's words and
cuts it out of the positive (the inverse cloze task the other collections get). Scores are the raw trained weights
(no WiSE-FT), by pytrec_eval over every judged query, documents and queries at the training's 128 tokens.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path


def self_pairs_to_spans(rows, seed: int):
    """Each row whose query is its positive gets half the sentence's words as query and the rest as positive."""
    from st_drama.augment.crop import without_crop

    def change(row: dict, index: int) -> dict:
        if row["query"].strip() != row["positive"].strip():
            return row
        words = row["query"].split()
        length = max(5, len(words) // 2)
        if len(words) < length + 5:  # too short to leave a five-word context: keep the self-pair
            return row
        start = random.Random(seed * 1_000_003 + index).randrange(len(words) - length + 1)
        span = " ".join(words[start : start + length])
        return row | {"query": span, "positive": without_crop(row["positive"], span)}

    return rows.map(change, with_indices=True)


def count_self_pairs(rows) -> int:
    return sum(row["query"].strip() == row["positive"].strip() for row in rows)


def ndcg_and_recall(model, folder: Path) -> dict[str, float]:
    import pytrec_eval

    from st_drama.corpus import load_corpus, load_qrels, load_queries

    documents, queries, qrels = load_corpus(folder), load_queries(folder), load_qrels(folder)
    judged = [query_id for query_id in queries if query_id in qrels]
    document_vectors = model.encode_document([d.full_text for d in documents], batch_size=32, convert_to_tensor=True)
    query_vectors = model.encode_query([queries[q] for q in judged], batch_size=32, convert_to_tensor=True)
    scores = model.similarity(query_vectors, document_vectors)
    top = scores.topk(min(100, len(documents)), dim=1)
    run = {
        query_id: {documents[i].doc_id: float(s) for s, i in zip(top.values[row], top.indices[row], strict=True)}
        for row, query_id in enumerate(judged)
    }
    evaluator = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in judged}, {"ndcg_cut.10", "recall.100"})
    measured = evaluator.evaluate(run).values()
    return {
        "ndcg_at_10": round(sum(m["ndcg_cut_10"] for m in measured) / len(judged), 4),
        "recall_at_100": round(sum(m["recall_100"] for m in measured) / len(judged), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("collection", type=Path)
    parser.add_argument("--eval-at", default="16,32,64", help="steps at which to score; the run stops at the last")
    parser.add_argument("--one-sentence-spans", action="store_true")
    args = parser.parse_args()

    import datasets
    from transformers import TrainerCallback

    from st_drama.augment import Augmenter
    from st_drama.pipeline import PipelineConfig
    from st_drama.training.contrastive import train

    config = PipelineConfig.from_preset("full", train={"wise_alpha": 1.0})
    data = args.output / "data"
    if not data.exists():
        Augmenter(config.augment).generate(args.collection, data, progress=False, unusable_llm="error")
    rows = datasets.load_dataset(str(data), split="train")
    self_pairs = count_self_pairs(rows)
    if args.one_sentence_spans:
        rows = self_pairs_to_spans(rows, config.augment.seed)
    left = count_self_pairs(rows)
    print(json.dumps({"rows": len(rows), "self_pairs": self_pairs, "self_pairs_trained": left}), flush=True)
    eval_at = sorted(int(step) for step in args.eval_at.split(","))
    log = args.output / ("trajectory_spans.jsonl" if args.one_sentence_spans else "trajectory.jsonl")

    class ScoreEvery(TrainerCallback):
        def on_step_end(self, train_args, state, control, model=None, **kwargs):
            if state.global_step not in eval_at:
                return
            started = time.time()
            model.eval()
            scores = ndcg_and_recall(model, args.collection)
            model.train()
            record = {"step": state.global_step, **scores, "eval_s": round(time.time() - started)}
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
            if state.global_step >= eval_at[-1]:
                control.should_training_stop = True

    run_dir = args.output / ("spans" if args.one_sentence_spans else "self_pairs")
    train(config.model, rows, run_dir, config.train, show_progress=False, callbacks=[ScoreEvery()])


if __name__ == "__main__":
    main()
