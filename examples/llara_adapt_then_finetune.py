"""Adapt an LLM with LLaRA's EBAE/EBAR pretext tasks, then fine-tune it contrastively, with your own trainers.

1. ``build_model(..., style="llara")`` frames documents with the EBAE prompt ("...summarize the above passage...")
   and queries with the EBAR prompt, each ending in special prompt tokens whose mean is the embedding.
2. ``build_pretraining_dataset`` cuts the corpus into (text, next passage) pairs; ``EBAEEBARLoss`` makes the EBAE
   embedding predict the text's own tokens and the EBAR embedding the next passage's tokens (bag of words through
   the LM head), both from one forward pass.
3. The adapted model is fine-tuned with InfoNCE on augmented rows; ``router_mapping`` keeps the LLaRA framing
   (queries through the EBAR prompt, passages through the EBAE prompt).

Run::

    python examples/llara_adapt_then_finetune.py --corpus cranfield --output runs/llara-example
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from st_drama import build_model
from st_drama.augment import AugmentConfig, Augmenter, MiningConfig
from st_drama.evaluation import evaluate
from st_drama.llara import build_pretraining_dataset
from st_drama.losses import EBAEEBARLoss
from st_drama.training.runtime import precision_arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="LLM folder, hub id or 'smollm2-135m'.")
    parser.add_argument("--corpus", default="cranfield", help="BEIR-layout folder or 'cranfield'.")
    parser.add_argument("--output", default="runs/llara-example")
    parser.add_argument("--max-docs", type=int, default=None, help="Use the first N documents for both stages.")
    parser.add_argument("--chunk-tokens", type=int, default=64, help="Tokens per LLaRA text and next passage.")
    parser.add_argument("--adapt-steps", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-evaluate", action="store_true")
    return parser.parse_args(argv)


def training_arguments(output: Path, steps: int, batch_size: int, learning_rate: float, **extra) -> object:
    return SentenceTransformerTrainingArguments(
        output_dir=str(output),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=0.05,
        **precision_arguments(bf16=None),  # bf16 autocast where supported; use_cpu without a GPU
        save_strategy="no",
        logging_steps=5,
        report_to=[],
        **extra,
    )


def adapt(args: argparse.Namespace, output: Path) -> SentenceTransformer:
    model = build_model(args.model, style="llara", max_seq_length=args.chunk_tokens + 32)
    pairs = build_pretraining_dataset(
        args.corpus, model.tokenizer, chunk_tokens=args.chunk_tokens, max_documents=args.max_docs
    )
    print(f"{len(pairs)} (text, next passage) pairs")
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_arguments(output / "adapt", args.adapt_steps, args.batch_size, 2e-5),
        train_dataset=pairs,
        loss=EBAEEBARLoss(model),
    )
    trainer.train()
    model.save(str(output / "adapted"))
    return model


def finetune(model: SentenceTransformer, args: argparse.Namespace, output: Path) -> SentenceTransformer:
    config = AugmentConfig(sources=["crop"], max_docs=args.max_docs, mining=MiningConfig(num_negatives=3))
    rows = Augmenter(config).generate(args.corpus, output / "data", progress=False)
    columns = ["query", "positive", "negative_1", "negative_2", "negative_3"]
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_arguments(
            output / "finetune",
            args.train_steps,
            args.batch_size,
            5e-5,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            router_mapping={column: "query" if column == "query" else "document" for column in columns},
        ),
        train_dataset=rows.select_columns(columns),
        loss=MultipleNegativesRankingLoss(model, scale=20.0),
    )
    trainer.train()
    model.save(str(output / "model"))
    return model


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    output = Path(args.output)
    model = finetune(adapt(args, output), args, output)
    print(f"Saved {output / 'model'}; load it with SentenceTransformer(path, trust_remote_code=True).")
    if args.no_evaluate:
        return {"model": str(output / "model")}
    results = evaluate(model, [args.corpus], baselines="bm25", output_dir=output / "evaluation", show_progress=False)
    print((output / "evaluation" / "results.md").read_text())
    return {"model": str(output / "model"), "results": results.to_dict()}


if __name__ == "__main__":
    main()
