"""``st-drama pretrain``: LLaRA adaptation (EBAE + EBAR) of an LLM on a corpus."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="Adapt an LLM for retrieval with LLaRA's EBAE and EBAR tasks.",
        description="LLaRA adaptation: the embedding of a text learns to predict the text (EBAE) and the passage "
        "after it (EBAR). Saves a LLaRA-style SentenceTransformer to OUTPUT_DIR/model.",
    )
    parser.add_argument("model", help="LLM folder or hub id, or 'smollm2-135m' for the embedded default.")
    parser.add_argument("corpus", help="BEIR folder, corpus .jsonl, folder of .txt/.md files, or 'cranfield'.")
    parser.add_argument("output_dir", help="Run folder (checkpoints/ and model/ inside).")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chunk-tokens", type=int, default=128, help="Tokens per text chunk.")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--lora", action="store_true", help="Train LoRA adapters instead of all weights.")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--resume", action="store_true", help="Continue from the latest checkpoint.")
    parser.add_argument("--save-steps", type=int, default=50)
    parser.add_argument("--max-docs", type=int, default=None, help="Use only the first N documents.")
    parser.add_argument("--skip-malformed", action="store_true", help="Skip and count bad or empty documents.")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", default=None, help="Train in fp32.")
    parser.add_argument("--seed", type=int, default=42)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from st_drama.llara import pretrain

    model_path = pretrain(
        args.model,
        args.corpus,
        args.output_dir,
        steps=args.steps,
        batch_size=args.batch_size,
        chunk_tokens=args.chunk_tokens,
        learning_rate=args.learning_rate,
        lora=args.lora,
        lora_rank=args.lora_rank,
        resume=args.resume,
        bf16=args.bf16,
        save_steps=args.save_steps,
        max_documents=args.max_docs,
        skip_malformed=args.skip_malformed,
        seed=args.seed,
    )
    print(f"Adapted model saved to {model_path}")
    return 0
