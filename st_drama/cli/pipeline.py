"""``st-drama pipeline``: the whole job, LLM -> (prune) -> (LLaRA) -> augment -> train -> evaluate."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from st_drama.defaults import DEFAULT_LLM_NAME
from st_drama.pipeline.presets import PRESETS, PipelineConfig

from .arguments import add_progress, add_seed, add_skip_malformed, add_style, comma_separated, parse_ranks


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="Run the whole pipeline on a corpus and evaluate against baselines.",
        description="LLM -> (prune) -> (LLaRA adapt) -> augment CORPUS_DIR -> train -> evaluate. CORPUS_DIR is a "
        "BEIR-layout folder (or 'cranfield'); augmentation and adaptation read only its corpus.jsonl, its queries "
        "and qrels (if present) only the final evaluation. Each stage writes its own folder in OUTPUT_DIR and a "
        "rerun skips finished stages. The model ends in OUTPUT_DIR/model, the results in OUTPUT_DIR/results.md.",
    )
    parser.add_argument("corpus_dir", help="BEIR-layout folder, or 'cranfield' for the bundled collection.")
    parser.add_argument("output_dir", help="Run folder.")
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="quick",
        help="quick: about ten minutes on a 2-core CPU; full: quick's recipe for 192 steps with WiSE-FT 0.7 (about "
        "an hour of training); gpu: LLaRA adaptation, then cropped and LLM-written queries with seven hard "
        "negatives for one epoch, for a GPU and a strong --augment-llm (default: %(default)s).",
    )
    preset.add_argument("--full", dest="preset", action="store_const", const="full", help="Same as --preset full.")
    parser.add_argument(
        "--model", default=None, help=f"Source LLM (default: the embedded {DEFAULT_LLM_NAME}, SmolLM2-135M)."
    )
    parser.add_argument("--prune-params", default=None, help="Add the prune stage with this budget, e.g. 60M.")
    parser.add_argument("--llara", dest="llara", action="store_true", default=None, help="Add the LLaRA stage.")
    parser.add_argument("--no-llara", dest="llara", action="store_false", help="Skip the LLaRA stage.")
    parser.add_argument(
        "--sources",
        default=None,
        help="Override the preset's query sources, comma-separated: crop, synthetic, title (e.g. crop,title).",
    )
    parser.add_argument(
        "--augment-llm",
        default=None,
        help="Chat LLM folder that writes synthetic queries and reranks (default: the embedded SmolLM2-135M, "
        "too small for good queries; DRAMA used a 70B model).",
    )
    parser.add_argument(
        "--crops-per-doc",
        type=int,
        default=None,
        help="Cropped queries per document, each from a different sentence (default 1). More give a small corpus "
        "distinct rows for a long run instead of repeats.",
    )
    parser.add_argument(
        "--negative-ranks",
        default=None,
        help="First-stage ranks that supply hard negatives, LOW-HIGH (default: DRAMA's 30-50).",
    )
    parser.add_argument("--train-steps", type=int, default=None, help="Override the preset's training steps.")
    parser.add_argument(
        "--wise-alpha",
        type=float,
        default=None,
        help="Override the preset's WiSE-FT share of the trained weights (the rest is the starting model's).",
    )
    add_style(
        parser,
        "Framing without the llara stage: DRAMA's (bidirectional, mean pooling, 'Query: ' prefix) or LLaRA's "
        "(causal, EBAR/EBAE prompts, mean over the prompt tokens). Default: the preset's; the llara stage implies "
        "llara.",
    )
    parser.add_argument(
        "--baselines",
        default=None,
        help="Baselines to evaluate next to the model, comma-separated among bm25, minilm, backbone (the untrained "
        "LLM), or 'none' (default: the preset's, bm25,minilm).",
    )
    parser.add_argument(
        "--hybrid",
        default=None,
        help="Also evaluate the model (and the dense baselines) fused with BM25: METHOD:DENSE_WEIGHT, comma-separated "
        "(default: the preset's, rsf:0.3; 'none' for no fusion).",
    )
    parser.add_argument("--no-evaluate", action="store_true", help="Skip the evaluation stage.")
    add_skip_malformed(parser)
    add_seed(parser)
    add_progress(parser)
    parser.set_defaults(func=run)


def stage_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The changes the options make to the preset, by stage (see :meth:`PipelineConfig.changed`)."""
    changes: dict[str, Any] = {}
    if args.model:
        changes["model"] = args.model
    if args.prune_params:
        changes["prune"] = {"target": {"params": args.prune_params}}
    if args.llara is not None:
        changes["llara"] = {} if args.llara else None
    augment: dict[str, Any] = {}
    if args.sources:
        augment["sources"] = tuple(comma_separated(args.sources))
    if args.augment_llm:
        augment["llm"] = args.augment_llm
    if args.crops_per_doc is not None:
        augment["crop"] = {"per_document": args.crops_per_doc}
    if args.negative_ranks:
        augment["mining"] = {"negative_ranks": parse_ranks(args.negative_ranks, "--negative-ranks")}
    if augment:
        changes["augment"] = augment
    train = {"steps": args.train_steps, "style": args.style, "wise_alpha": args.wise_alpha}
    train = {key: value for key, value in train.items() if value is not None}
    if train:
        changes["train"] = train
    evaluate = {"baselines": args.baselines, "hybrids": args.hybrid}
    evaluate = {key: value for key, value in evaluate.items() if value is not None}
    if args.no_evaluate:
        changes["evaluate"] = None
    elif evaluate:
        changes["evaluate"] = evaluate
    return changes


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    config = PipelineConfig.from_preset(args.preset, **stage_changes(args))
    return config.with_seed(args.seed) if args.seed is not None else config


def run(args: argparse.Namespace) -> int:
    from st_drama.pipeline import run_pipeline

    run_pipeline(
        args.corpus_dir,
        args.output_dir,
        config_from_args(args),
        skip_malformed=args.skip_malformed,
        show_progress=not args.no_progress,
    )
    print(Path(args.output_dir, "results.md").read_text(encoding="utf-8"))
    return 0
