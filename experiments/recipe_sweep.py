"""Which contrastive recipe trains best under the quick preset's budget? nDCG@10 / Recall@100 on a collection of
models trained for the same steps from the same augmented rows, one recipe per row, in one run.

Training reads only the augmented rows (from the collection's corpus); the queries and judgements are used only for
scoring. Results accumulate in ``OUTPUT/results.jsonl`` and a rerun skips finished recipes.

    st-drama augment cranfield runs/aug-cranfield --sources crop --negatives 1 --skip-malformed
    .venv/bin/python experiments/recipe_sweep.py runs/recipe-sweep runs/aug-cranfield
    .venv/bin/python experiments/recipe_sweep.py runs/recipe-sweep runs/aug-cranfield --only llara_lr2e-4_t0.02 \\
        --start-model runs/llara-adaptation/adapt/model --label-suffix _adapted
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from st_drama.evaluation import evaluate
from st_drama.training.contrastive import train

QUICK_RECIPE = {"style": "llara", "learning_rate": 2e-4, "temperature": 0.02}
# name: train() settings on top of the quick preset's (16 steps of 16 rows, 128 tokens, one hard negative).
RECIPES: dict[str, dict] = {
    "drama_lr5e-5_t0.05": {"style": "drama", "learning_rate": 5e-5, "temperature": 0.05},
    "drama_lr2e-4_t0.05": {"style": "drama", "learning_rate": 2e-4, "temperature": 0.05},
    "drama_lr5e-4_t0.05": {"style": "drama", "learning_rate": 5e-4, "temperature": 0.05},
    "drama_lr2e-4_t0.02": {"style": "drama", "learning_rate": 2e-4, "temperature": 0.02},
    "llara_lr5e-5_t0.05": {"style": "llara", "learning_rate": 5e-5, "temperature": 0.05},
    "llara_lr2e-4_t0.05": {"style": "llara", "learning_rate": 2e-4, "temperature": 0.05},
    "llara_lr5e-4_t0.05": {"style": "llara", "learning_rate": 5e-4, "temperature": 0.05},
    "llara_lr2e-4_t0.02": QUICK_RECIPE,
    "llara_lr2e-4_t0.05_no-hard-negative_24-steps": {
        "style": "llara",
        "learning_rate": 2e-4,
        "temperature": 0.05,
        "num_negatives": 0,
        "steps": 24,
    },
    # The quick recipe with sentence-transformers' InfoNCE variants (train(loss_options=...)) or without Matryoshka.
    "llara_lr2e-4_t0.02_symmetric": {
        **QUICK_RECIPE,
        "loss_options": {"directions": ["query_to_doc", "doc_to_query"], "partition_mode": "per_direction"},
    },
    "llara_lr2e-4_t0.02_gte": {
        **QUICK_RECIPE,
        "loss_options": {"directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]},
    },
    "llara_lr2e-4_t0.02_hardness9": {
        **QUICK_RECIPE,
        "loss_options": {"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0},
    },
    "llara_lr2e-4_t0.02_no-matryoshka": {**QUICK_RECIPE, "matryoshka_dims": None},
}
BUDGET = {"steps": 16, "batch_size": 16, "num_negatives": 1, "max_seq_length": 128}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="Run folder.")
    parser.add_argument("training_data", help="Augmented rows (an `st-drama augment` folder).")
    parser.add_argument("--start-model", default="smollm2-135m", help="LLM or SentenceTransformer folder to train.")
    parser.add_argument("--collection", default="cranfield", help="BEIR folder or 'cranfield'.")
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES), help="Run only these recipes.")
    parser.add_argument("--label-suffix", default="", help="Appended to each recipe's name in the results.")
    parser.add_argument("--max-seq-length", type=int, default=128, help="Tokens per text when scoring.")
    parser.add_argument(
        "--steps", type=int, default=BUDGET["steps"], help="Training steps (recipes may set their own)."
    )
    args = parser.parse_args()

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.jsonl"
    finished = (
        {json.loads(line)["name"] for line in results_path.read_text().splitlines()}
        if results_path.exists()
        else set()
    )
    for recipe in args.only or RECIPES:
        name = recipe + args.label_suffix
        if name in finished:
            continue
        settings = {**BUDGET, "steps": args.steps, **RECIPES[recipe]}
        started = time.time()
        model_dir = train(args.start_model, args.training_data, output / name, show_progress=False, **settings)
        train_s = time.time() - started
        started = time.time()
        results = evaluate(
            model_dir,
            args.collection,
            baselines="none",
            output_dir=output / name / "evaluation",
            style=settings["style"],
            max_seq_length=args.max_seq_length,
            model_name=f"st-drama/{name}",
            show_progress=False,
        )
        scores = next(iter(results.run("model").scores.values()))
        row = {
            "name": name,
            "settings": settings,
            "start_model": args.start_model,
            "ndcg_at_10": round(scores.ndcg_at_10, 4),
            "recall_at_100": round(scores.recall_at_100, 4),
            "train_s": round(train_s),
            "eval_s": round(time.time() - started),
        }
        with results_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{name}: nDCG@10 {row['ndcg_at_10']:.3f}  R@100 {row['recall_at_100']:.3f}  train {row['train_s']} s")


if __name__ == "__main__":
    main()
