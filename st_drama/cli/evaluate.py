"""``st-drama evaluate``: MTEB on local BEIR folders or named MTEB tasks, next to BM25, all-MiniLM-L6-v2 and the
untrained backbone."""

from __future__ import annotations

import argparse

from st_drama.evaluation.config import BASELINES, EvaluateConfig

from .arguments import add_progress, add_skip_malformed, add_style, comma_separated, default_of, given

# option dest -> EvaluateConfig field
CONFIG_OPTIONS = {
    "baselines": "baselines",
    "model_name": "model_name",
    "backbone": "backbone",
    "style": "style",
    "bf16": "bf16",
    "batch_size": "batch_size",
    "device": "device",
    "max_seq_length": "max_seq_length",
    "max_chunks": "max_chunks",
    "hybrid": "hybrids",
    "per_query": "per_query",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="Evaluate a retriever with MTEB next to baselines.",
        description=(
            "Run MTEB on each TASK for MODEL and the baselines; write MTEB's result files, results.json, results.md "
            "(nDCG@10 / Recall@100) and ndcg_at_10.png to --output."
        ),
    )
    parser.add_argument(
        "model", help="A saved SentenceTransformer folder, an LLM folder or hub id, or 'smollm2-135m' (untrained)."
    )
    parser.add_argument(
        "tasks",
        nargs="+",
        metavar="TASK",
        help="A BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), 'cranfield' (bundled), or an "
        "MTEB task or benchmark name (needs the Hugging Face Hub).",
    )
    parser.add_argument(
        "--baselines",
        default=None,
        help=f"Comma-separated baselines among {', '.join(BASELINES)}, or 'none' (default: "
        f"{','.join(default_of(EvaluateConfig, 'baselines'))}).",
    )
    parser.add_argument("--output", "-o", default="st-drama-evaluation", help="Output folder (default: %(default)s).")
    parser.add_argument("--model-name", default=None, help="The model's MTEB name, 'org/name'.")
    parser.add_argument(
        "--backbone",
        default=None,
        help="LLM of the untrained-backbone baseline (default: MODEL when it is an LLM, else smollm2-135m).",
    )
    add_style(parser, f"Style of untrained models (default: {default_of(EvaluateConfig, 'style')}).")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--bf16", dest="bf16", action="store_true", default=None, help="Encode LLM-based models under bf16 autocast."
    )
    precision.add_argument("--fp32", dest="bf16", action="store_false", help="Encode everything in float32.")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"Texts per forward pass (default: {default_of(EvaluateConfig, 'batch_size')}).",
    )
    parser.add_argument("--device", default=None, help="Device for the dense models (e.g. cpu, cuda).")
    parser.add_argument(
        "--max-seq-length",
        type=int,
        default=None,
        help="Maximum tokens per text for MODEL and the untrained backbone (default: their own).",
    )
    parser.add_argument(
        "--max-chunks",
        type=int,
        default=None,
        help="Cut texts longer than the maximum length into up to this many windows and average their embeddings "
        "(st-drama models: MODEL and the untrained backbone; default: their own, 1 truncates).",
    )
    parser.add_argument(
        "--hybrid",
        default=None,
        help="Also evaluate each dense model fused with BM25, comma-separated METHOD:DENSE_WEIGHT with METHOD rrf, "
        "rsf or dbsf (e.g. rsf:0.3,rrf:0.5; the weight defaults to 0.3); the dense embeddings are computed once.",
    )
    parser.add_argument(
        "--per-query",
        action="store_true",
        default=None,
        help="Keep each query's nDCG@10 and Recall@100 in results.json (MTEB's rankings in OUTPUT/predictions), for "
        "paired comparisons between runs; results already in the cache are searched again once.",
    )
    parser.add_argument(
        "--trained-on",
        default=None,
        help="Comma-separated MTEB task names (for a BEIR folder: its name) whose data, corpus included, MODEL was "
        "trained on; recorded in model_meta.json's training_datasets (the model is not zero-shot on them).",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="MTEB result cache shared between runs (default: --output itself); this run's results are copied into "
        "OUTPUT/results either way.",
    )
    parser.add_argument("--overwrite", action="store_true", help="Recompute results already in the cache.")
    add_skip_malformed(parser)
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from st_drama.evaluation.report import markdown_table
    from st_drama.evaluation.runner import evaluate

    results = evaluate(
        args.model,
        args.tasks,
        EvaluateConfig(**given(args, CONFIG_OPTIONS)),
        output_dir=args.output,
        trained_on=comma_separated(args.trained_on or ""),
        cache_dir=args.cache,
        overwrite=args.overwrite,
        skip_malformed=args.skip_malformed,
        show_progress=not args.no_progress,
    )
    print(markdown_table(results))
    for label, path in results.files.items():
        print(f"{label}: {path}")
    return 0
