"""``st-drama build``: make a DRAMA- or LLaRA-style SentenceTransformer folder from a Llama-family LLM."""

from __future__ import annotations

import argparse

from st_drama.defaults import DEFAULT_STYLE

from .arguments import add_style


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build",
        help="Build a retriever folder from an LLM (untrained).",
        description="Build a SentenceTransformer folder (backbone + pooling + normalize) from a Llama-family LLM.",
    )
    parser.add_argument("model", help="LLM folder or hub id, or 'smollm2-135m' for the embedded default.")
    parser.add_argument("output_dir", help="Where to save the SentenceTransformer folder.")
    add_style(parser, f"Framing (default: {DEFAULT_STYLE}).")
    parser.add_argument("--attention", choices=("bidirectional", "causal"), default=None)
    parser.add_argument("--pooling", choices=("mean", "last_token", "prompt_tokens"), default=None)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from st_drama import build_model

    style = args.style or DEFAULT_STYLE
    model = build_model(
        args.model,
        style=style,
        attention=args.attention,
        pooling=args.pooling,
        max_seq_length=args.max_seq_length,
    )
    model.save(args.output_dir)
    print(f"Saved {style}-style model to {args.output_dir}")
    return 0
