"""``st-drama train``: single-stage contrastive training on (query, positive, negatives) rows."""

from __future__ import annotations

import argparse

from st_drama.cli import comma_separated


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Contrastive training (InfoNCE, hard negatives, Matryoshka) of a retriever.",
        description="Train a retriever in one contrastive stage. DATA: a saved datasets folder, a folder of "
        ".parquet/.jsonl shards (st-drama augment output) or one such file, with columns query, positive, "
        "negative_1..k. Runs distributed under torchrun / accelerate launch (negatives gathered across processes).",
    )
    parser.add_argument("model", help="LLM folder or hub id, 'smollm2-135m', or a SentenceTransformer folder.")
    parser.add_argument("data", help="Training rows (see above).")
    parser.add_argument("output_dir", help="Run folder (checkpoints/ and model/ inside).")
    parser.add_argument("--style", choices=("drama", "llara"), default="drama")
    parser.add_argument("--steps", type=int, default=None, help="Optimisation steps (default: --epochs).")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--negatives", type=int, default=None, help="Hard negatives per row (default: all).")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument(
        "--loss-directions",
        default=None,
        help="InfoNCE directions, comma-separated: query_to_doc (default), doc_to_query (symmetric), query_to_query, "
        "doc_to_doc (all four: GTE's improved contrastive loss).",
    )
    parser.add_argument("--partition-mode", choices=("joint", "per_direction"), default=None)
    parser.add_argument(
        "--hardness-mode",
        choices=("in_batch_negatives", "hard_negatives", "all_negatives"),
        default=None,
        help="Weight harder negatives up (sentence-transformers' hardness_mode); see --hardness-strength.",
    )
    parser.add_argument("--hardness-strength", type=float, default=None)
    parser.add_argument(
        "--matryoshka-dims", default="auto", help="'auto' (full, 512, 256 where smaller), 'none', or e.g. 512,256."
    )
    parser.add_argument("--cached", action="store_true", help="GradCache loss for batches larger than memory.")
    parser.add_argument("--mini-batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--lora", action="store_true", help="Train LoRA adapters instead of all weights.")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--resume", action="store_true", help="Continue from the latest checkpoint.")
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", default=None, help="Train in fp32.")
    parser.add_argument(
        "--wise-alpha",
        type=float,
        default=1.0,
        help="WiSE-FT: save (1 - a) * start + a * trained weights (default 1: the trained weights as they are).",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.set_defaults(func=run)


def parse_dims(text: str) -> list[int] | str | None:
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    try:
        return [int(part) for part in text.split(",")]
    except ValueError as error:
        raise ValueError(f"--matryoshka-dims must be 'auto', 'none' or integers like 512,256; got {text!r}") from error


def loss_options_from(args: argparse.Namespace) -> dict[str, object]:
    """The InfoNCE loss arguments given on the command line (sentence-transformers' names)."""
    options: dict[str, object] = {}
    if args.loss_directions:
        options["directions"] = tuple(comma_separated(args.loss_directions))
    for name in ("partition_mode", "hardness_mode", "hardness_strength"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def run(args: argparse.Namespace) -> int:
    from st_drama.training.train import train

    model_path = train(
        args.model,
        args.data,
        args.output_dir,
        style=args.style,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_negatives=args.negatives,
        temperature=args.temperature,
        matryoshka_dims=parse_dims(args.matryoshka_dims),
        cached=args.cached,
        mini_batch_size=args.mini_batch_size,
        max_seq_length=args.max_seq_length,
        lora=args.lora,
        lora_rank=args.lora_rank,
        resume=args.resume,
        bf16=args.bf16,
        save_steps=args.save_steps,
        seed=args.seed,
        loss_options=loss_options_from(args),
        wise_alpha=args.wise_alpha,
    )
    print(f"Trained model saved to {model_path}")
    return 0
