"""``st-drama train``: single-stage contrastive training on (query, positive, negatives) rows."""

from __future__ import annotations

import argparse

from st_drama.training.config import TrainConfig

from .arguments import add_no_bf16, add_seed, add_style, comma_separated, default_of, given, parse_dims

# option dest -> TrainConfig field
CONFIG_OPTIONS = {
    "style": "style",
    "steps": "steps",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "negatives": "num_negatives",
    "temperature": "temperature",
    "matryoshka_dims": "matryoshka_dims",
    "cached": "cached",
    "mini_batch_size": "mini_batch_size",
    "max_seq_length": "max_seq_length",
    "lora": "lora",
    "lora_rank": "lora_rank",
    "bf16": "bf16",
    "save_steps": "save_steps",
    "wise_alpha": "wise_alpha",
    "distill_weight": "distill_weight",
    "teacher_temperature": "teacher_temperature",
    "seed": "seed",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Contrastive training (InfoNCE, hard negatives, Matryoshka) of a retriever.",
        description="Train a retriever in one contrastive stage. DATA: a saved datasets folder, a folder of "
        ".parquet/.jsonl shards (st-drama augment output) or one such file, with columns query, positive, "
        "negative_1..k (and scores, a teacher's score for the positive and each negative, for --distill-weight). "
        "Runs distributed under torchrun / accelerate launch (negatives gathered across processes).",
    )
    parser.add_argument("model", help="LLM folder or hub id, 'smollm2-135m', or a SentenceTransformer folder.")
    parser.add_argument("data", help="Training rows (see above).")
    parser.add_argument("output_dir", help="Run folder (checkpoints/ and model/ inside).")
    add_style(parser, f"Framing of a model built from an LLM (default: {default_of(TrainConfig, 'style')}).")
    parser.add_argument("--steps", type=int, default=None, help="Optimisation steps (default: --epochs).")
    parser.add_argument("--epochs", type=float, default=None, help=f"(default: {default_of(TrainConfig, 'epochs')})")
    parser.add_argument(
        "--batch-size", type=int, default=None, help=f"(default: {default_of(TrainConfig, 'batch_size')})"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="(default: 2e-4 with --lora, 5e-5 for all weights)"
    )
    parser.add_argument("--negatives", type=int, default=None, help="Hard negatives per row (default: all).")
    parser.add_argument(
        "--temperature", type=float, default=None, help=f"(default: {default_of(TrainConfig, 'temperature')})"
    )
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
        "--matryoshka-dims",
        type=parse_dims,
        default=None,
        help="'auto' (full, 512, 256 where smaller; the default), 'none', or e.g. 512,256.",
    )
    parser.add_argument(
        "--cached", action="store_true", default=None, help="GradCache loss for batches larger than memory."
    )
    parser.add_argument(
        "--mini-batch-size", type=int, default=None, help=f"(default: {default_of(TrainConfig, 'mini_batch_size')})"
    )
    parser.add_argument(
        "--max-seq-length", type=int, default=None, help=f"(default: {default_of(TrainConfig, 'max_seq_length')})"
    )
    parser.add_argument(
        "--lora", action="store_true", default=None, help="Train LoRA adapters instead of all weights."
    )
    parser.add_argument(
        "--lora-rank", type=int, default=None, help=f"(default: {default_of(TrainConfig, 'lora_rank')})"
    )
    parser.add_argument("--resume", action="store_true", help="Continue from the latest checkpoint.")
    parser.add_argument(
        "--save-steps", type=int, default=None, help=f"(default: {default_of(TrainConfig, 'save_steps')})"
    )
    add_no_bf16(parser)
    parser.add_argument(
        "--wise-alpha",
        type=float,
        default=None,
        help="WiSE-FT: save (1 - a) * start + a * trained weights (default 1: the trained weights as they are).",
    )
    parser.add_argument(
        "--distill-weight",
        type=float,
        default=None,
        help="Add a KL-divergence term towards the teacher's scores in the rows' 'scores' column, with this weight "
        "(default 0: InfoNCE alone).",
    )
    parser.add_argument(
        "--teacher-temperature",
        type=float,
        default=None,
        help=f"Divides the teacher's scores before their softmax (default: "
        f"{default_of(TrainConfig, 'teacher_temperature')}, for log-likelihoods).",
    )
    add_seed(parser)
    parser.set_defaults(func=run)


def loss_options_from(args: argparse.Namespace) -> dict[str, object]:
    """The InfoNCE loss arguments given on the command line (sentence-transformers' names)."""
    options: dict[str, object] = {}
    if args.loss_directions:
        options["directions"] = tuple(comma_separated(args.loss_directions))
    for name in ("partition_mode", "hardness_mode", "hardness_strength"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    changes = given(args, CONFIG_OPTIONS)
    if loss_options := loss_options_from(args):
        changes["loss_options"] = loss_options
    return TrainConfig(**changes)


def run(args: argparse.Namespace) -> int:
    from st_drama.training.contrastive import train

    model_path = train(args.model, args.data, args.output_dir, config_from_args(args), resume=args.resume)
    print(f"Trained model saved to {model_path}")
    return 0
