"""``st-drama convert``: a published DRAMA or LLaRA checkpoint as a sentence-transformers folder."""

from __future__ import annotations

import argparse

from st_drama.convert import RELEASES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Convert a released DRAMA or LLaRA checkpoint into a sentence-transformers folder.",
        description="DRAMA (facebook/drama-base|large|1b layout) becomes a standard sentence-transformers folder "
        "(bidirectional, mean pooling, 'Query: ' prompt, EOS; loads without trust_remote_code); LLaRA "
        "(BAAI/LLARA-* layout) an st-drama LLaRA-style folder reproducing the release's usage code. SOURCE is a local "
        "folder, or a hub id when the Hugging Face Hub is reachable.",
    )
    parser.add_argument("source", help="Release folder (or hub id).")
    parser.add_argument("output_dir", help="New or empty folder for the converted model.")
    parser.add_argument("--release", choices=RELEASES, default=None, help="Which release (default: from its layout).")
    parser.add_argument(
        "--max-seq-length", type=int, default=None, help="Maximum tokens per text (default: DRAMA 8192, LLaRA 512)."
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from st_drama.convert import convert_release

    model = convert_release(args.source, args.output_dir, args.release, args.max_seq_length)
    loading = "SentenceTransformer(folder)" if type(model[0]).__module__.startswith("sentence_transformers") else (
        "SentenceTransformer(folder, trust_remote_code=True)"
    )  # fmt: skip
    print(f"Converted {args.source} into {args.output_dir}; load it with {loading}.")
    return 0
