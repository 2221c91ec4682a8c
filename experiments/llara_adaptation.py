"""Does LLaRA adaptation help? nDCG@10 / Recall@100 on a collection, in LLaRA framing, of the raw LLM and the
EBAE/EBAR-adapted one, then of each after the same contrastive training, in one run.

Adaptation and training read only the corpus (training rows come from ``st-drama augment``); the collection's
queries and judgements are used only for scoring. Results accumulate in ``OUTPUT/summary.json``, and a rerun skips
the finished parts.

    st-drama augment cranfield runs/aug-cranfield --sources crop --negatives 1 --skip-malformed
    .venv/bin/python experiments/llara_adaptation.py runs/llara-adaptation runs/aug-cranfield
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from st_drama import build_model
from st_drama.evaluation import evaluate
from st_drama.llara.adaptation import pretrain
from st_drama.training.contrastive import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="Run folder.")
    parser.add_argument("training_data", help="Augmented rows (an `st-drama augment` folder).")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--collection", default="cranfield", help="BEIR folder or 'cranfield'.")
    parser.add_argument("--adapt-steps", type=int, default=60)
    parser.add_argument("--train-steps", type=int, default=16)
    parser.add_argument("--train-lr", type=float, default=2e-4, help="Contrastive learning rate (the quick preset's).")
    parser.add_argument(
        "--train-temperature", type=float, default=0.02, help="InfoNCE temperature (the quick preset's)."
    )
    parser.add_argument("--max-seq-length", type=int, default=128, help="Tokens per text when scoring.")
    args = parser.parse_args()

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    summary_path = output / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}

    def record(key: str, value: object) -> None:
        summary[key] = value
        summary_path.write_text(json.dumps(summary, indent=2))
        print(key, value, flush=True)

    def score(label: str, model: object) -> None:
        if label in summary:
            return
        start = time.time()
        results = evaluate(
            model,
            args.collection,
            baselines="none",
            output_dir=output / f"eval-{label}",
            style="llara",
            max_seq_length=args.max_seq_length,
            model_name=f"st-drama/{label}",
            show_progress=False,
        )
        scores = next(iter(results.run("model").scores.values()))
        record(
            label,
            {
                "ndcg_at_10": scores.ndcg_at_10,
                "recall_at_100": scores.recall_at_100,
                "eval_s": round(time.time() - start),
            },
        )

    score("raw", build_model(args.model, style="llara", max_seq_length=args.max_seq_length))
    adapted = output / "adapt" / "model"
    if not adapted.exists():
        start = time.time()
        pretrain(
            args.model,
            args.collection,
            output / "adapt",
            steps=args.adapt_steps,
            batch_size=8,
            chunk_tokens=128,
            learning_rate=5e-5,
            show_progress=False,
            skip_malformed=True,
        )
        record("adapt_s", round(time.time() - start))
    score("adapted", str(adapted))
    for start_model, name in ((args.model, "trained_from_raw"), (str(adapted), "trained_from_adapted")):
        folder = output / name
        if not (folder / "model").exists():
            start = time.time()
            train(
                start_model,
                args.training_data,
                folder,
                style="llara",
                steps=args.train_steps,
                batch_size=16,
                learning_rate=args.train_lr,
                temperature=args.train_temperature,
                num_negatives=1,
                max_seq_length=128,
                show_progress=False,
            )
            record(name + "_train_s", round(time.time() - start))
        score(name, str(folder / "model"))


if __name__ == "__main__":
    main()
