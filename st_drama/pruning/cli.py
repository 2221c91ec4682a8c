"""``st-drama prune``: structured pruning of a Llama LLM to a target shape, with optional recovery."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--method", choices=("importance", "learned", "random"), default="importance")
    parser.add_argument(
        "--calibration",
        default=None,
        help="Calibration corpus: BEIR folder, .jsonl, folder of .txt/.md files, or 'cranfield' (default: bundled "
        "Cranfield).",
    )
    parser.add_argument("--calibration-tokens", type=int, default=32_768, help="Token budget of the calibration.")
    parser.add_argument("--seq-length", type=int, default=256, help="Tokens per calibration/training block.")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--recover-steps", type=int, default=0, help="Recovery steps after pruning (0 = none).")
    parser.add_argument("--recover-mode", choices=("distill", "lm"), default="distill")
    parser.add_argument("--recover-lr", type=float, default=2e-4)
    parser.add_argument("--recovery-corpus", default=None, help="Recovery text (default: the calibration corpus).")
    parser.add_argument("--learned-steps", type=int, default=200, help="Mask training steps (--method learned).")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", default=None, help="Run in fp32.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-checkpoints", action="store_true", help="Keep the work folder after success.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from st_drama.pruning import LearnedMaskConfig, PruningTarget, RecoveryConfig, prune
    from st_drama.pruning.target import ModelShape

    target = PruningTarget(
        num_layers=args.layers,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        params=args.params,
    )
    if not target.to_dict():
        raise ValueError("Give a target: --params, or any of --layers --hidden --intermediate --heads --kv-heads.")
    recovery = RecoveryConfig(
        steps=args.recover_steps,
        mode=args.recover_mode,
        learning_rate=args.recover_lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    learned = LearnedMaskConfig(steps=args.learned_steps, batch_size=args.batch_size, seed=args.seed)
    model = prune(
        args.model,
        target,
        calibration_texts=args.calibration,
        method=args.method,
        output_dir=args.output_dir,
        calibration_tokens=args.calibration_tokens,
        sequence_length=args.seq_length,
        batch_size=args.batch_size,
        recovery=recovery,
        recovery_texts=args.recovery_corpus,
        learned=learned,
        bf16=args.bf16,
        seed=args.seed,
        keep_checkpoints=args.keep_checkpoints,
    )
    shape = ModelShape.from_config(model.config)
    sizes = ", ".join(f"{name}={value}" for name, value in shape.pruned_sizes().items())
    print(
        f"Pruned model ({sizes}; {shape.non_embedding_parameters():,} non-embedding and "
        f"{shape.total_parameters():,} total parameters) saved to {args.output_dir}"
    )
    return 0
