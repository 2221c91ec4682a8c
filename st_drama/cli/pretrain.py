"""``st-drama pretrain``: LLaRA adaptation (EBAE + EBAR) of an LLM on a corpus."""

from __future__ import annotations

import argparse

from st_drama.llara.config import LlaraConfig

from .arguments import add_no_bf16, add_seed, add_skip_malformed, default_of, given

# option dest -> LlaraConfig field
CONFIG_OPTIONS = {
    "steps": "steps",
    "batch_size": "batch_size",
    "chunk_tokens": "chunk_tokens",
    "learning_rate": "learning_rate",
    "lora": "lora",
    "lora_rank": "lora_rank",
    "save_steps": "save_steps",
    "max_docs": "max_documents",
    "bf16": "bf16",
    "seed": "seed",
}


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
    parser.add_argument("--steps", type=int, default=None, help=f"(default: {default_of(LlaraConfig, 'steps')})")
    parser.add_argument(
        "--batch-size", type=int, default=None, help=f"(default: {default_of(LlaraConfig, 'batch_size')})"
    )
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help=f"Tokens per text chunk (default: {default_of(LlaraConfig, 'chunk_tokens')}).",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="(default: 1e-4 with --lora, 2e-5 for all weights)"
    )
    parser.add_argument(
        "--lora", action="store_true", default=None, help="Train LoRA adapters instead of all weights."
    )
    parser.add_argument(
        "--lora-rank", type=int, default=None, help=f"(default: {default_of(LlaraConfig, 'lora_rank')})"
    )
    parser.add_argument("--resume", action="store_true", help="Continue from the latest checkpoint.")
    parser.add_argument(
        "--save-steps", type=int, default=None, help=f"(default: {default_of(LlaraConfig, 'save_steps')})"
    )
    parser.add_argument("--max-docs", type=int, default=None, help="Use only the first N documents.")
    add_skip_malformed(parser)
    add_no_bf16(parser)
    add_seed(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from st_drama.llara import pretrain

    model_path = pretrain(
        args.model,
        args.corpus,
        args.output_dir,
        LlaraConfig(**given(args, CONFIG_OPTIONS)),
        resume=args.resume,
        skip_malformed=args.skip_malformed,
    )
    print(f"Adapted model saved to {model_path}")
    return 0
