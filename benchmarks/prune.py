"""Structured pruning of SmolLM2-135M to about half its non-embedding parameters, in one run: time to prune and
held-out perplexity before pruning, after importance pruning, after random pruning to the same shape, and after a
fixed small budget of distillation (recovery) from the unpruned model. Then, as a diagnostic, the untrained
nDCG@10 on Cranfield of the pruned model inside ``build_model`` (DRAMA style: bidirectional, mean pooling).

Calibration and recovery read the first CISI documents; perplexity is measured on CISI documents neither of them
saw. Everything runs under bf16 autocast on CPU (about 2.5x faster than fp32 here).

    .venv/bin/python benchmarks/prune.py                      # the default run (~10-15 minutes on 2 CPU cores)
    .venv/bin/python benchmarks/prune.py --recover-steps 20 --eval-tokens 2048 --skip-ndcg   # a quick look
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from st_drama import build_model, resolve_model_path
from st_drama.corpus import load_corpus, load_qrels, load_queries
from st_drama.pruning import (
    ModelShape,
    PruneConfig,
    PruningTarget,
    RecoveryConfig,
    pack_token_blocks,
    perplexity,
    prune,
    recover,
)

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def cisi_split(held_out_documents: int) -> tuple[list[str], list[str]]:
    texts = [document.full_text for document in load_corpus(SHARED_DATA / "cisi", keep_empty=True)]
    texts = [text for text in texts if text.strip()]
    return texts[:-held_out_documents], texts[-held_out_documents:]


def cranfield_ndcg(model_folder: str, max_seq_length: int, batch_size: int) -> float:
    """Untrained nDCG@10 on Cranfield of a pruned causal LM inside build_model (a diagnostic)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    collection = SHARED_DATA / "cranfield"
    corpus = {document.doc_id: document.full_text for document in load_corpus(collection, keep_empty=True)}
    queries = load_queries(collection)
    qrels = load_qrels(collection)
    relevant = {qid: {doc for doc, score in docs.items() if score > 0} for qid, docs in qrels.items()}
    relevant = {qid: docs for qid, docs in relevant.items() if docs and qid in queries}
    retriever = build_model(model_folder, max_seq_length=max_seq_length, model_kwargs={"dtype": torch.bfloat16})
    evaluator = InformationRetrievalEvaluator(
        {qid: queries[qid] for qid in relevant}, corpus, relevant, batch_size=batch_size, write_csv=False
    )
    scores = evaluator(retriever)
    return next(value for key, value in scores.items() if key.endswith("cosine_ndcg@10"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--params", default="53M", help="Non-embedding parameter budget (SmolLM2: 106.2M).")
    parser.add_argument("--calibration-tokens", type=int, default=8_192)
    parser.add_argument("--eval-tokens", type=int, default=4_096)
    parser.add_argument("--held-out-documents", type=int, default=260)
    parser.add_argument("--seq-length", type=int, default=256)
    parser.add_argument("--recover-steps", type=int, default=40)
    parser.add_argument("--recover-batch-size", type=int, default=2)
    parser.add_argument("--recover-lr", type=float, default=1e-3)
    parser.add_argument("--ndcg-max-seq-length", type=int, default=128)
    parser.add_argument("--skip-ndcg", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="Torch threads (default: torch's; 1 is faster on a busy machine)."
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    model_path = resolve_model_path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    source = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    train_texts, held_out_texts = cisi_split(args.held_out_documents)
    held_out = pack_token_blocks(tokenizer, held_out_texts, args.eval_tokens, args.seq_length, source="CISI held-out")
    source_shape = ModelShape.from_config(source.config)
    target = PruningTarget(params=args.params)
    shape = target.resolve(source.config)
    print(
        f"{args.model}: {source_shape.pruned_sizes()}, {source_shape.non_embedding_parameters() / 1e6:.1f}M "
        f"non-embedding parameters; {torch.get_num_threads()} threads, bf16 autocast"
    )
    print(f"target --params {args.params}: {shape.pruned_sizes()}, {shape.non_embedding_parameters() / 1e6:.1f}M")
    print(
        f"calibration/recovery: first {len(train_texts)} CISI documents; perplexity on {held_out.num_tokens:,} "
        f"tokens of the last {len(held_out_texts)}\n"
    )
    config = PruneConfig(
        target=target,
        calibration_tokens=args.calibration_tokens,
        sequence_length=args.seq_length,
        bf16=True,
        seed=args.seed,
    )
    rows: list[tuple[str, str, float]] = []
    rows.append(("unpruned", "-", perplexity(source, held_out, bf16=True)))

    started = time.perf_counter()
    importance = prune(source, config, train_texts, tokenizer=tokenizer, method="importance", show_progress=False)
    importance_seconds = time.perf_counter() - started
    rows.append(("importance", f"{importance_seconds:.0f}s", perplexity(importance, held_out, bf16=True)))

    started = time.perf_counter()
    random = prune(source, config, train_texts, tokenizer=tokenizer, method="random", show_progress=False)
    random_seconds = time.perf_counter() - started
    rows.append(("random, same shape", f"{random_seconds:.0f}s", perplexity(random, held_out, bf16=True)))
    del random

    recovery_tokens = 2 * args.recover_steps * args.recover_batch_size * args.seq_length
    recovery_blocks = pack_token_blocks(tokenizer, train_texts, recovery_tokens, args.seq_length, source="CISI")
    recovery = RecoveryConfig(
        steps=args.recover_steps,
        learning_rate=args.recover_lr,
        batch_size=args.recover_batch_size,
        save_steps=args.recover_steps,
    )
    with tempfile.TemporaryDirectory() as checkpoints:
        started = time.perf_counter()
        recovered = recover(
            importance,
            recovery_blocks,
            checkpoints,
            recovery,
            teacher=source,
            show_progress=False,
            seed=args.seed,
            bf16=True,
        )
        recovery_seconds = time.perf_counter() - started
    label = f"importance + {args.recover_steps} distillation steps"
    rows.append((label, f"+{recovery_seconds:.0f}s", perplexity(recovered, held_out, bf16=True)))

    print(f"{'model':<40}{'time to prune':>14}{'perplexity':>12}")
    for name, seconds, value in rows:
        print(f"{name:<40}{seconds:>14}{value:>12.1f}")
    unpruned, after_importance, after_random, after_recovery = (row[2] for row in rows)
    closed = (after_importance - after_recovery) / (after_importance - unpruned)
    print(
        f"\nratio random / importance (perplexity): {after_random / after_importance:.1f}x; recovery closed "
        f"{100 * closed:.0f}% of the importance-pruned gap ({recovery_blocks.num_tokens:,} training tokens)"
    )

    if not args.skip_ndcg:
        with tempfile.TemporaryDirectory() as folder:
            recovered.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            started = time.perf_counter()
            ndcg = cranfield_ndcg(folder, args.ndcg_max_seq_length, batch_size=32)
        print(
            f"diagnostic: untrained nDCG@10 on Cranfield of the pruned + recovered model in build_model "
            f"(max_seq_length {args.ndcg_max_seq_length}): {ndcg:.3f} ({time.perf_counter() - started:.0f}s)"
        )


if __name__ == "__main__":
    main()
