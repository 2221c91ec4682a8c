"""The DRAMA recipe in Python: prune an LLM to a smaller backbone, optionally adapt it with LLaRA, train it
contrastively on augmented data, and evaluate it, with st-drama's high-level functions.

Each function writes a folder the next one reads, and each resumes from its own checkpoints when rerun.

Run::

    python examples/prune_adapt_train.py --corpus cranfield --output runs/prune-example --params 30M
"""

from __future__ import annotations

import argparse
from pathlib import Path

from st_drama.augment import AugmentConfig, Augmenter, MiningConfig
from st_drama.evaluation import evaluate
from st_drama.llara import pretrain
from st_drama.pruning import prune
from st_drama.training.contrastive import train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="LLM folder, hub id or 'smollm2-135m'.")
    parser.add_argument("--corpus", default="cranfield", help="BEIR-layout folder or 'cranfield'.")
    parser.add_argument("--output", default="runs/prune-example")
    parser.add_argument("--params", default="30M", help="Non-embedding parameter budget of the pruned model.")
    parser.add_argument("--calibration-tokens", type=int, default=50_000)
    parser.add_argument("--recover-steps", type=int, default=20, help="Distillation steps after pruning.")
    parser.add_argument("--llara-steps", type=int, default=0, help="LLaRA adaptation steps (0: skip).")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-docs", type=int, default=None)
    parser.add_argument("--no-evaluate", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    output = Path(args.output)

    pruned_dir = output / "pruned"
    prune(
        args.model,
        target={"params": args.params},
        calibration_texts=args.corpus,
        output_dir=pruned_dir,
        calibration_tokens=args.calibration_tokens,
        recovery={"steps": args.recover_steps},
        show_progress=False,
    )
    backbone, style = str(pruned_dir), "drama"
    if args.llara_steps:
        backbone = pretrain(
            backbone, args.corpus, output / "llara", steps=args.llara_steps, batch_size=args.batch_size,
            chunk_tokens=64, max_documents=args.max_docs, resume=True, show_progress=False,
        )  # fmt: skip
        style = "llara"

    config = AugmentConfig(sources=["crop"], max_docs=args.max_docs, mining=MiningConfig(num_negatives=3))
    Augmenter(config).generate(args.corpus, output / "data", progress=False)
    model_dir = train(
        backbone, output / "data", output / "train", style=style, steps=args.train_steps,
        batch_size=args.batch_size, max_seq_length=128, resume=True, show_progress=False,
    )  # fmt: skip
    print(f"Trained model: {model_dir}")
    if args.no_evaluate:
        return {"model": model_dir}
    results = evaluate(
        model_dir, [args.corpus], baselines="bm25", output_dir=output / "evaluation", show_progress=False
    )
    print(results.files["table"].read_text())
    return {"model": model_dir, "results": results.to_dict()}


if __name__ == "__main__":
    main()
