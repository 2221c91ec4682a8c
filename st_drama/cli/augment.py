"""``st-drama augment CORPUS OUTPUT_DIR``: contrastive training data from a corpus with an LLM, DRAMA style."""

from __future__ import annotations

import argparse

from st_drama.augment.config import (
    BACKENDS,
    PRECISIONS,
    RERANKERS,
    AugmentConfig,
    CropConfig,
    GenerationConfig,
    MiningConfig,
    RerankConfig,
)
from st_drama.config_tools import updated

from .arguments import add_progress, add_seed, add_skip_malformed, comma_separated, default_of, given, parse_ranks

EPILOG = """\
Output: parquet files under OUTPUT_DIR/data (one per chunk of documents) and a README.md summary. Load with
datasets.load_dataset(OUTPUT_DIR, split="train"); keep the trainer's columns with
dataset.select_columns(["query", "positive", "negative_1", ..., "negative_K"]).
Rerun the same command to resume a killed run. --shard i/n makes part i of n (1-based); the parts, in order,
equal one full run with the same --seed.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "augment",
        help="Make contrastive training data (query, positive, hard negatives) from a corpus with an LLM.",
        description="Cropped-sentence and LLM synthetic queries, first-stage candidate mining, optional LLM "
        "reranking; resumable and shardable.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("corpus", help="BEIR folder, corpus .jsonl, folder of .txt/.md files, or 'cranfield'.")
    parser.add_argument("output_dir", help="Output folder (rerun the same command to resume).")
    parser.add_argument("--llm", default=None, help=f"Chat LLM folder (default: {default_of(AugmentConfig, 'llm')}).")
    parser.add_argument(
        "--sources",
        default=None,
        help="Comma-separated: crop, synthetic, title (a document's title as the query for its text); default: "
        f"{','.join(default_of(AugmentConfig, 'sources'))}.",
    )
    parser.add_argument("--rerank", choices=RERANKERS, default=None, help="(default: none)")
    parser.add_argument(
        "--negatives",
        type=int,
        default=None,
        help=f"Hard negatives per row (default: {default_of(MiningConfig, 'num_negatives')}).",
    )
    parser.add_argument(
        "--max-docs", type=int, default=None, help="Make queries from the first N documents (all are indexed)."
    )
    parser.add_argument("--shard", default="1/1", help="Make part i of n, 1-based (e.g. 2/4).")
    add_seed(parser)
    add_skip_malformed(parser)
    parser.add_argument(
        "--retriever",
        default=None,
        help="First stage: 'bm25' (default), 'minilm' (the installed all-MiniLM-L6-v2) or a SentenceTransformer "
        "folder.",
    )
    parser.add_argument(
        "--retriever-fusion",
        default=None,
        help="Fuse the dense first stage with BM25: METHOD:DENSE_WEIGHT (e.g. rsf:0.3; methods rrf, rsf, dbsf).",
    )
    parser.add_argument("--positive-ranks", default=None, help="First-stage ranks of positives (default 1-10).")
    parser.add_argument("--negative-ranks", default=None, help="First-stage ranks of negatives (default 30-50).")
    parser.add_argument(
        "--rerank-depth",
        type=int,
        default=None,
        help=f"Candidates reranked (default {default_of(RerankConfig, 'depth')}).",
    )
    parser.add_argument("--rerank-negative-ranks", default=None, help="Reranked ranks of negatives (default 10-20).")
    parser.add_argument(
        "--crop-context-removal",
        type=float,
        default=None,
        help="Probability that a crop is cut out of its own document when that is the positive (default "
        f"{default_of(CropConfig, 'context_removal')}; 0 keeps DRAMA's verbatim positives).",
    )
    parser.add_argument(
        "--crops-per-doc",
        type=int,
        default=None,
        help="Cropped queries per document, each from a different sentence (default "
        f"{default_of(CropConfig, 'per_document')}; more give a small corpus enough distinct rows for a long run).",
    )
    parser.add_argument(
        "--queries-per-doc",
        type=int,
        default=None,
        help=f"Synthetic queries per document (default {default_of(GenerationConfig, 'queries_per_document')}).",
    )
    sampling = default_of(GenerationConfig, "sampling")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help=f"Sampling temperature; 0 = greedy (default {sampling.temperature}).",
    )
    parser.add_argument("--top-p", type=float, default=None, help=f"(default {sampling.top_p})")
    parser.add_argument("--max-new-tokens", type=int, default=None, help=f"(default {sampling.max_new_tokens})")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"Prompts per LLM batch (default {default_of(AugmentConfig, 'batch_size')}).",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help=f"Documents per output chunk (default {default_of(AugmentConfig, 'chunk_size')}).",
    )
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="(default: auto)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None, help="(default: auto)")
    parser.add_argument("--device", default=None, help="Torch device (default: CUDA when available).")
    parser.add_argument("--pairrm-weights", default=None, help="Local PairRM folder (for --rerank pairrm).")
    parser.add_argument("--pairrm-backbone", default=None, help="Local folder of PairRM's backbone model.")
    add_progress(parser)
    parser.set_defaults(func=run)


# option dest -> AugmentConfig field
CONFIG_OPTIONS = {
    "llm": "llm",
    "rerank": "rerank",
    "max_docs": "max_docs",
    "seed": "seed",
    "retriever": "retriever",
    "retriever_fusion": "retriever_fusion",
    "batch_size": "batch_size",
    "chunk_size": "chunk_size",
    "backend": "backend",
    "precision": "precision",
    "device": "device",
    "pairrm_weights": "pairrm_weights",
    "pairrm_backbone": "pairrm_backbone",
}


def config_from_args(args: argparse.Namespace) -> AugmentConfig:
    """The :class:`~st_drama.augment.config.AugmentConfig` the command line describes."""
    changes: dict = given(args, CONFIG_OPTIONS)
    if args.sources is not None:
        changes["sources"] = tuple(comma_separated(args.sources))
    changes["crop"] = given(args, {"crop_context_removal": "context_removal", "crops_per_doc": "per_document"})
    sampling = given(args, {"temperature": "temperature", "top_p": "top_p", "max_new_tokens": "max_new_tokens"})
    changes["generation"] = given(args, {"queries_per_doc": "queries_per_document"})
    if sampling:
        changes["generation"]["sampling"] = sampling
    mining = given(args, {"negatives": "num_negatives"})
    for option, field in (("positive_ranks", "positive_ranks"), ("negative_ranks", "negative_ranks")):
        if getattr(args, option) is not None:
            mining[field] = parse_ranks(getattr(args, option), "--" + option.replace("_", "-"))
    changes["mining"] = mining
    reranking = given(args, {"rerank_depth": "depth"})
    if args.rerank_negative_ranks is not None:
        reranking["negative_ranks"] = parse_ranks(args.rerank_negative_ranks, "--rerank-negative-ranks")
    changes["reranking"] = reranking
    return updated(AugmentConfig(), changes)


def run(args: argparse.Namespace) -> int:
    from st_drama.augment.augmenter import Augmenter, format_summary
    from st_drama.augment.sharding import parse_shard

    shard = parse_shard(args.shard)
    augmenter = Augmenter(config_from_args(args))
    augmenter.generate(
        args.corpus, args.output_dir, shard=shard, skip_malformed=args.skip_malformed, progress=not args.no_progress
    )
    print(format_summary(augmenter.last_summary))
    print(f"Wrote {args.output_dir} (load with datasets.load_dataset({str(args.output_dir)!r}, split='train'))")
    return 0
