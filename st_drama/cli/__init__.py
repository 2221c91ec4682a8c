"""The ``st-drama`` command line: one module per command in this package, each providing ``add_parser(subparsers)``
and a ``run(args)`` that turns the options into the stage's config and keeps heavy imports inside."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Command modules in the order `st-drama --help` lists them.
COMMAND_MODULES = (
    "st_drama.cli.build",
    "st_drama.cli.prune",
    "st_drama.cli.augment",
    "st_drama.cli.pretrain",
    "st_drama.cli.train",
    "st_drama.cli.pipeline",
    "st_drama.cli.evaluate",
    "st_drama.cli.convert",
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="st-drama",
        description="Small, fast dense retrievers from LLMs: prune, adapt (LLaRA), augment, train and evaluate.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="Log debug messages.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_path in COMMAND_MODULES:
        importlib.import_module(module_path).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # User-facing failures (bad input, missing files, missing packages) end with one clear line, not a trace.
        if args.verbose:
            raise
        print(f"st-drama {args.command}: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
