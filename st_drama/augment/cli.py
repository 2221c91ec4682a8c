"""``st-drama augment CORPUS OUTPUT_DIR``: contrastive training data from a corpus with an LLM, DRAMA style."""

from __future__ import annotations

import argparse

from .crop import CropSettings

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
    parser.add_argument("--llm", default="smollm2-135m", help="Chat LLM folder, or 'smollm2-135m' (default).")
    parser.add_argument(
        "--sources",
        default="crop,synthetic",
        help="Comma-separated: crop, synthetic, title (a document's title as the query for its text).",
    )
    parser.add_argument("--rerank", choices=("none", "listwise", "pointwise", "pairrm"), default="none")
    parser.add_argument("--negatives", type=int, default=7, help="Hard negatives per row (default 7).")
    parser.add_argument(
        "--max-docs", type=int, default=None, help="Make queries from the first N documents (all are indexed)."
    )
    parser.add_argument("--shard", default="1/1", help="Make part i of n, 1-based (e.g. 2/4).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-malformed", action="store_true", help="Skip and count malformed corpus rows.")
    parser.add_argument("--retriever", default="bm25", help="'bm25' or a SentenceTransformer folder.")
    parser.add_argument("--positive-ranks", default="1-10", help="First-stage ranks of positives (default 1-10).")
    parser.add_argument("--negative-ranks", default="30-50", help="First-stage ranks of negatives (default 30-50).")
    parser.add_argument("--rerank-depth", type=int, default=20, help="Candidates reranked (default 20).")
    parser.add_argument("--rerank-negative-ranks", default="10-20", help="Reranked ranks of negatives (10-20).")
    parser.add_argument(
        "--crop-context-removal",
        type=float,
        default=CropSettings.context_removal,
        help="Probability that a crop is cut out of its own document when that is the positive (default "
        "%(default)s; 0 keeps DRAMA's verbatim positives).",
    )
    parser.add_argument(
        "--crops-per-doc",
        type=int,
        default=CropSettings.per_document,
        help="Cropped queries per document, each from a different sentence (default %(default)s; more give a small "
        "corpus enough distinct rows for a long run).",
    )
    parser.add_argument("--queries-per-doc", type=int, default=1, help="Synthetic queries per document.")
    parser.add_argument("--temperature", type=float, default=0.8, help="Sampling temperature; 0 = greedy.")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8, help="Prompts per LLM batch.")
    parser.add_argument("--chunk-size", type=int, default=32, help="Documents per output chunk.")
    parser.add_argument("--backend", choices=("auto", "transformers", "vllm"), default="auto")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--device", default=None, help="Torch device (default: CUDA when available).")
    parser.add_argument("--pairrm-weights", default=None, help="Local PairRM folder (for --rerank pairrm).")
    parser.add_argument("--pairrm-backbone", default=None, help="Local folder of PairRM's backbone model.")
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    parser.set_defaults(func=run)


def parse_ranks(text: str, option: str) -> tuple[int, int]:
    """``"30-50"`` -> ``(30, 50)``."""
    parts = text.split("-")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"{option} expects LOW-HIGH (e.g. 30-50), got {text!r}")
    return int(parts[0]), int(parts[1])


def config_from_args(args: argparse.Namespace):
    """The :class:`~st_drama.augment.generator.AugmentConfig` the command line describes."""
    from st_drama.cli import comma_separated

    from .generation import GenerationSettings
    from .generator import AugmentConfig
    from .llm import SamplingSettings
    from .mining import MiningSettings
    from .rerank import RerankSettings

    sources = tuple(comma_separated(args.sources))
    sampling = SamplingSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p)
    return AugmentConfig(
        sources=sources,
        llm=args.llm,
        backend=args.backend,
        precision=args.precision,
        batch_size=args.batch_size,
        retriever=args.retriever,
        rerank=args.rerank,
        seed=args.seed,
        chunk_size=args.chunk_size,
        max_docs=args.max_docs,
        crop=CropSettings(context_removal=args.crop_context_removal, per_document=args.crops_per_doc),
        generation=GenerationSettings(sampling=sampling, queries_per_document=args.queries_per_doc),
        mining=MiningSettings(
            positive_ranks=parse_ranks(args.positive_ranks, "--positive-ranks"),
            negative_ranks=parse_ranks(args.negative_ranks, "--negative-ranks"),
            num_negatives=args.negatives,
        ),
        reranking=RerankSettings(
            depth=args.rerank_depth, negative_ranks=parse_ranks(args.rerank_negative_ranks, "--rerank-negative-ranks")
        ),
        pairrm_weights=args.pairrm_weights,
        pairrm_backbone=args.pairrm_backbone,
        device=args.device,
    )


def run(args: argparse.Namespace) -> int:
    from .generator import AugmentationGenerator, format_summary
    from .sharding import parse_shard

    shard = parse_shard(args.shard)
    generator = AugmentationGenerator(config_from_args(args))
    generator.generate(
        args.corpus, args.output_dir, shard=shard, skip_malformed=args.skip_malformed, progress=not args.no_progress
    )
    print(format_summary(generator.last_summary))
    print(f"Wrote {args.output_dir} (load with datasets.load_dataset({str(args.output_dir)!r}, split='train'))")
    return 0
