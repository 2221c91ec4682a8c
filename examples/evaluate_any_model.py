"""Evaluate any SentenceTransformer with MTEB on local BEIR-layout folders, next to BM25 and all-MiniLM-L6-v2.

Two ways, both scored by MTEB's own retrieval evaluation:

- ``st_drama.evaluation.evaluate``: the model and the baselines, result files (``results.json``, ``results.md``,
  ``ndcg_at_10.png``) and a leaderboard ``model_meta.json``, cached so a rerun skips finished work.
- ``mteb.evaluate`` with a ``BeirRetrievalTask``: plain MTEB on a local folder, for your own MTEB scripts.

Run::

    python examples/evaluate_any_model.py path/to/sentence-transformer-folder cranfield --output runs/eval-example
"""

from __future__ import annotations

import argparse

import mteb
from sentence_transformers import SentenceTransformer

from st_drama.evaluation import BeirRetrievalTask, evaluate, minilm_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model", nargs="?", default=None, help="A SentenceTransformer folder or hub id (default: all-MiniLM-L6-v2)."
    )
    parser.add_argument("collections", nargs="*", default=["cranfield"], help="BEIR-layout folders or 'cranfield'.")
    parser.add_argument("--output", default="runs/eval-example")
    parser.add_argument("--baselines", default="bm25", help="Among bm25, minilm, backbone.")
    parser.add_argument(
        "--fp32", action="store_true", help="Encode in float32 (by default LLM backbones use bf16 where native)."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    model = SentenceTransformer(args.model or str(minilm_path()), trust_remote_code=True)

    results = evaluate(
        model,
        args.collections,
        baselines=args.baselines,
        output_dir=args.output,
        bf16=False if args.fp32 else None,
        show_progress=False,
    )
    print((results.files["table"]).read_text())

    # The same collection as a plain MTEB task: what evaluate() runs underneath (plain MTEB encodes in float32).
    task = BeirRetrievalTask(args.collections[0])
    plain = mteb.evaluate(model, task, cache=None, show_progress_bar=False, co2_tracker=False)
    scores = plain.task_results[0].scores[task.eval_splits[0]][0]
    print(f"plain mteb.evaluate on {task.metadata.name}: nDCG@10 {scores['ndcg_at_10']:.4f}")
    return {"results": results.to_dict(), "plain_ndcg_at_10": scores["ndcg_at_10"]}


if __name__ == "__main__":
    main()
