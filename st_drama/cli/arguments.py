"""What the commands share: parsing option values, and turning the options a user gave into changes of a stage's
config (an option left out keeps the config's default, so every default has one home: the config)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from st_drama.defaults import DEFAULT_SEED, STYLES


def comma_separated(text: str) -> list[str]:
    """The items of a comma-separated option value, stripped, empty items dropped (``"crop, title,"``)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_ranks(text: str, option: str) -> tuple[int, int]:
    """``"30-50"`` -> ``(30, 50)``."""
    parts = text.split("-")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"{option} expects LOW-HIGH (e.g. 30-50), got {text!r}")
    return int(parts[0]), int(parts[1])


def parse_dims(text: str) -> tuple[int, ...] | str | None:
    """``--matryoshka-dims``: ``"auto"``, ``"none"`` or sizes such as ``"512,256"``."""
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    try:
        return tuple(int(part) for part in comma_separated(text))
    except ValueError as error:
        raise ValueError(f"--matryoshka-dims must be 'auto', 'none' or integers like 512,256; got {text!r}") from error


def default_of(config_class: type, name: str) -> Any:
    """The default of a config field, for help texts."""
    for field in dataclasses.fields(config_class):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            return field.default_factory()  # type: ignore[misc]
    raise KeyError(f"{config_class.__name__} has no field {name!r}")


def given(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """``{config field: value}`` for each option in ``mapping`` (``{option dest: config field}``) the user gave."""
    return {field: getattr(args, dest) for dest, field in mapping.items() if getattr(args, dest) is not None}


def add_style(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--style", choices=STYLES, default=None, help=help_text)


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, help=f"Random seed (default: {DEFAULT_SEED}).")


def add_no_bf16(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-bf16", dest="bf16", action="store_false", default=None, help="Run in fp32 (default: bf16 where fast)."
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def add_skip_malformed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-malformed",
        action="store_true",
        help="Skip malformed corpus rows (bad JSON, missing or empty text, duplicate ids) and count them, instead "
        "of refusing the corpus.",
    )
