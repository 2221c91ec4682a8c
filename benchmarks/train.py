"""Training throughput: ``st_drama.training.contrastive`` vs a plain sentence-transformers training script on the same
weights and the same rows, in one run.

The plain script is what a user writes without st-drama: ``SentenceTransformer`` with a ``Transformer`` (the decoder
run causally, sentence-transformers' default for a Llama checkpoint) and mean ``Pooling``, trained with
``MultipleNegativesRankingLoss`` inside ``MatryoshkaLoss`` on ``SentenceTransformerTrainer``, same batch size, same
hard negatives, same maximum length and the same precision. Ours adds bidirectional attention through an explicit
4D mask, query/document framing, EOS, no-duplicate batches, checkpoints and the final save. Both time the training
steps only (from the end of the first, warm-up, step to the end of the last). Prints examples/s (one example: a query,
its positive and its negatives) and the ratio ours/plain (> 1 means ours is faster).

    .venv/bin/python benchmarks/train.py --rows 256 --batch-size 16 --negatives 3 --max-seq-length 128 --steps 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.modules import Normalize, Transformer
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.modules import Pooling
from transformers import TrainerCallback

from st_drama import resolve_model_path
from st_drama.augment import AugmentConfig, Augmenter, MiningConfig
from st_drama.precision import bf16_is_fast
from st_drama.training.contrastive import matryoshka_dims_for, train


def training_rows(output: Path, rows: int, negatives: int) -> Dataset:
    config = AugmentConfig(sources=["crop"], max_docs=rows, mining=MiningConfig(num_negatives=negatives))
    data = Augmenter(config).generate("cranfield", output, skip_malformed=True, progress=False)
    return data.select_columns(["query", "positive", *(f"negative_{i}" for i in range(1, negatives + 1))])


class StepTimer(TrainerCallback):
    """Seconds from the end of the first (warm-up) step to the end of the last one."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.seconds = 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self.started = time.perf_counter()
        elif self.started is not None:
            self.seconds = time.perf_counter() - self.started


def plain_script(model_path: str, rows: Dataset, args: argparse.Namespace, output: Path, timer: StepTimer) -> None:
    transformer = Transformer(model_path, max_seq_length=args.max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    if model.tokenizer.pad_token is None:
        model.tokenizer.pad_token = model.tokenizer.eos_token
    dims = matryoshka_dims_for(model.get_embedding_dimension())
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model, scale=20.0), matryoshka_dims=dims)
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(output),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=5e-5,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        bf16=args.bf16,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=training_args, train_dataset=rows, loss=loss, callbacks=[timer]
    )
    trainer.train()


def ours(model_path: str, rows: Dataset, args: argparse.Namespace, output: Path, timer: StepTimer) -> None:
    train(
        model_path,
        rows,
        output,
        steps=args.steps,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        bf16=args.bf16,
        save_steps=10_000,
        show_progress=False,
        callbacks=[timer],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--fp32", dest="bf16", action="store_false", default=bf16_is_fast())
    args = parser.parse_args()

    model_path = resolve_model_path(args.model)
    with tempfile.TemporaryDirectory() as folder:
        rows = training_rows(Path(folder, "data"), args.rows, args.negatives)
        examples = (args.steps - 1) * args.batch_size
        print(
            f"{len(rows)} rows (query, positive, {args.negatives} negatives), batch {args.batch_size}, "
            f"{args.steps} steps, max {args.max_seq_length} tokens, bf16={args.bf16}, "
            f"{torch.get_num_threads()} threads"
        )
        results = {}
        for label, run in (("plain ST script", plain_script), ("st-drama train", ours)):
            timer = StepTimer()
            run(model_path, rows, args, Path(folder, label.replace(" ", "_")), timer)
            seconds = timer.seconds
            results[label] = examples / seconds
            print(f"{label:<18}{examples / seconds:>10.2f} examples/s{seconds:>10.1f} s")
        print(f"ratio ours/plain (examples/s): {results['st-drama train'] / results['plain ST script']:.2f}x")


if __name__ == "__main__":
    main()
