"""The ``st-drama`` command line. Each command lives beside its code and registers itself here by module path;
a command module provides ``add_parser(subparsers)`` and keeps heavy imports inside the function it runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Command modules in the order `st-drama --help` lists them.
COMMAND_MODULES = (
    "st_drama.commands.build",
    "st_drama.pruning.cli",
    "st_drama.augment.cli",
    "st_drama.llara.cli",
    "st_drama.training.cli",
    "st_drama.commands.pipeline",
    "st_drama.evaluation.cli",
)


def comma_separated(text: str) -> list[str]:
    """The items of a comma-separated option value, stripped, empty items dropped (``"crop, title,"``)."""
    return [item.strip() for item in text.split(",") if item.strip()]


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
