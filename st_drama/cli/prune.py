"""``st-drama prune``: structured pruning of a Llama LLM to a target shape, with optional recovery."""

from __future__ import annotations

import argparse

from st_drama.pruning.config import METHODS, RECOVERY_MODES, LearnedMaskConfig, PruneConfig, RecoveryConfig

from .arguments import add_no_bf16, add_seed, default_of, given

# option dest -> PruningTarget field
TARGET_OPTIONS = {
    "layers": "num_layers",
    "hidden": "hidden_size",
    "intermediate": "intermediate_size",
    "heads": "num_heads",
    "kv_heads": "num_kv_heads",
    "params": "params",
}
# option dest -> PruneConfig field
CONFIG_OPTIONS = {
    "method": "method",
    "calibration_tokens": "calibration_tokens",
    "seq_length": "sequence_length",
    "batch_size": "batch_size",
    "bf16": "bf16",
    "seed": "seed",
}
# option dest -> RecoveryConfig field
RECOVERY_OPTIONS = {"recover_steps": "steps", "recover_mode": "mode", "recover_lr": "learning_rate"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="Prune a Llama LLM to a smaller standard LlamaForCausalLM.",
        description="Structured pruning (layers, hidden channels, FFN neurons, attention heads / KV groups) of a "
        "Llama model to a target shape or parameter budget, then optional recovery by distillation. The output "
        "folder loads with plain transformers and with st-drama build.",
    )
    parser.add_argument("model", help="Llama folder or hub id, or 'smollm2-135m' for the embedded default.")
    parser.add_argument("output_dir", help="Where to save the pruned model (new or empty; rerun to resume).")
    shape = parser.add_argument_group("target shape (give any; the rest stay as in the source or follow --params)")
    shape.add_argument("--layers", type=int, help="Decoder layers to keep.")
    shape.add_argument("--hidden", type=int, help="Hidden size (embedding channels).")
    shape.add_argument("--intermediate", type=int, help="FFN neurons per layer.")
    shape.add_argument("--heads", type=int, help="Query heads per layer.")
    shape.add_argument("--kv-heads", type=int, help="Key/value heads (GQA groups) per layer.")
    shape.add_argument("--params", help="Budget of non-embedding parameters, e.g. 60M or 0.1B.")
    parser.add_argument(
        "--method", choices=METHODS, default=None, help=f"(default: {default_of(PruneConfig, 'method')})"
    )
    parser.add_argument(
        "--calibration",
        default=None,
        help="Calibration corpus: BEIR folder, .jsonl, folder of .txt/.md files, or 'cranfield' (default: bundled "
        "Cranfield).",
    )
    parser.add_argument(
        "--calibration-tokens",
        type=int,
        default=None,
        help=f"Token budget of the calibration (default: {default_of(PruneConfig, 'calibration_tokens')}).",
    )
    parser.add_argument(
        "--seq-length",
        type=int,
        default=None,
        help=f"Tokens per calibration/training block (default: {default_of(PruneConfig, 'sequence_length')}).",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Blocks per calibration, recovery and mask-training batch (default: "
        f"{default_of(PruneConfig, 'batch_size')}).",
    )
    parser.add_argument("--recover-steps", type=int, default=None, help="Recovery steps after pruning (default 0).")
    parser.add_argument(
        "--recover-mode", choices=RECOVERY_MODES, default=None, help=f"(default: {default_of(RecoveryConfig, 'mode')})"
    )
    parser.add_argument(
        "--recover-lr", type=float, default=None, help=f"(default: {default_of(RecoveryConfig, 'learning_rate')})"
    )
    parser.add_argument("--recovery-corpus", default=None, help="Recovery text (default: the calibration corpus).")
    parser.add_argument(
        "--learned-steps",
        type=int,
        default=None,
        help=f"Mask training steps, --method learned (default: {default_of(LearnedMaskConfig, 'steps')}).",
    )
    add_no_bf16(parser)
    add_seed(parser)
    parser.add_argument("--keep-checkpoints", action="store_true", help="Keep the work folder after success.")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> PruneConfig:
    target = given(args, TARGET_OPTIONS)
    if not target:
        raise ValueError("Give a target: --params, or any of --layers --hidden --intermediate --heads --kv-heads.")
    recovery = given(args, RECOVERY_OPTIONS)
    learned = {"steps": args.learned_steps} if args.learned_steps is not None else {}
    if args.batch_size is not None:
        recovery["batch_size"] = learned["batch_size"] = args.batch_size
    return PruneConfig(target=target, recovery=recovery, learned=learned, **given(args, CONFIG_OPTIONS))


def run(args: argparse.Namespace) -> int:
    from st_drama.pruning import prune
    from st_drama.pruning.target import ModelShape

    model = prune(
        args.model,
        config_from_args(args),
        calibration_texts=args.calibration,
        output_dir=args.output_dir,
        recovery_texts=args.recovery_corpus,
        keep_checkpoints=args.keep_checkpoints,
    )
    shape = ModelShape.from_config(model.config)
    sizes = ", ".join(f"{name}={value}" for name, value in shape.pruned_sizes().items())
    print(
        f"Pruned model ({sizes}; {shape.non_embedding_parameters():,} non-embedding and "
        f"{shape.total_parameters():,} total parameters) saved to {args.output_dir}"
    )
    return 0
