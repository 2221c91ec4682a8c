"""Train a DRAMA-style retriever with your own ``SentenceTransformerTrainer``.

The pieces st-drama provides are used directly, so each step can be swapped for your own:

1. ``Augmenter`` turns a corpus into (query, positive, negative_1..k) rows: cropped sentences and
   document titles as queries (add ``"synthetic"`` to the sources for LLM-written queries), BM25 positives from
   ranks 1-10 (a title's own document) and hard negatives from ranks 30-50.
2. ``build_model`` wraps the LLM as a bidirectional, mean-pooled retriever with the ``Query: `` prefix on queries.
3. sentence-transformers' InfoNCE loss (``MultipleNegativesRankingLoss``) inside ``MatryoshkaLoss``; the trainer
   frames the query column as ``encode_query`` does (the model's ``Query: `` prompt) and the rest as documents.
4. ``st_drama.evaluation.evaluate`` scores the result with MTEB next to BM25.

Run (a few minutes on a CPU)::

    python examples/train_drama_retriever.py --corpus cranfield --output runs/drama-example --steps 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

from st_drama import build_model
from st_drama.augment import AugmentConfig, Augmenter, MiningConfig
from st_drama.evaluation import evaluate
from st_drama.training.runtime import precision_arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="LLM folder, hub id or 'smollm2-135m'.")
    parser.add_argument("--corpus", default="cranfield", help="BEIR-layout folder or 'cranfield'.")
    parser.add_argument("--output", default="runs/drama-example")
    parser.add_argument("--max-docs", type=int, default=None, help="Make queries from the first N documents.")
    parser.add_argument("--negatives", type=int, default=3, help="Hard negatives per query (DRAMA: 7).")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--no-evaluate", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    output = Path(args.output)

    mining = MiningConfig(num_negatives=args.negatives)
    config = AugmentConfig(sources=["crop", "title"], max_docs=args.max_docs, mining=mining)
    rows = Augmenter(config).generate(args.corpus, output / "data", progress=False)
    columns = ["query", "positive", *(f"negative_{i}" for i in range(1, args.negatives + 1))]
    train_dataset = rows.select_columns(columns)
    print(f"{len(train_dataset)} training rows, e.g. {train_dataset[0]['query']!r}")

    model = build_model(args.model, style="drama", max_seq_length=args.max_seq_length)
    hidden = model.get_embedding_dimension()
    infonce = MultipleNegativesRankingLoss(model, scale=20.0)  # temperature 0.05
    loss = MatryoshkaLoss(model, infonce, matryoshka_dims=[hidden, *(d for d in (512, 256) if d < hidden)])

    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(output / "checkpoints"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=5e-5,
        warmup_steps=0.05,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts={"query": model.prompts["query"]},  # "Query: " before the query column, as encode_query does
        **precision_arguments(bf16=None),  # bf16 autocast where supported; use_cpu without a GPU
        save_strategy="no",
        logging_steps=5,
        report_to=[],
    )
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss)
    trainer.train()
    model.save(str(output / "model"))
    print(f"Saved {output / 'model'}; load it with SentenceTransformer({str(output / 'model')!r}).")

    if args.no_evaluate:
        return {"model": str(output / "model")}
    results = evaluate(model, [args.corpus], baselines="bm25", output_dir=output / "evaluation", show_progress=False)
    print((output / "evaluation" / "results.md").read_text())
    return {"model": str(output / "model"), "results": results.to_dict()}


if __name__ == "__main__":
    main()
