"""Loading contrastive training data: (query, positive, negative_1, ..., negative_k) rows."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_dataset, load_from_disk

logger = logging.getLogger(__name__)

NEGATIVE_COLUMN = re.compile(r"^negative_(\d+)$")


class TrainingDataError(ValueError):
    """Training data that cannot be used; the message names the file, row or column."""


def load_training_data(data: str | os.PathLike | Dataset, max_negatives: int | None = None) -> Dataset:
    """Contrastive rows as a ``datasets.Dataset`` with columns ``query``, ``positive``, ``negative_1`` ... in that
    order (what ``MultipleNegativesRankingLoss`` expects), other columns (``source``, ``doc_id``, ...) dropped.

    Args:
        data: A ``datasets.Dataset``; a folder written by ``Dataset.save_to_disk``; a folder of ``.parquet`` or
            ``.jsonl`` shards (``st-drama augment`` output); or a single ``.parquet``/``.jsonl`` file.
        max_negatives: Keep only the first hard negatives (default: all ``negative_*`` columns).

    Raises:
        TrainingDataError: Missing columns, or an empty or non-text value (naming row and column).
    """
    dataset = data if isinstance(data, Dataset) else _read(Path(data))
    columns = _training_columns(dataset, max_negatives, source=str(data) if not isinstance(data, Dataset) else "data")
    dataset = dataset.select_columns(columns)
    _check_texts(dataset, str(data) if not isinstance(data, Dataset) else "data")
    return dataset


def _read(path: Path) -> Dataset:
    if not path.exists():
        raise TrainingDataError(f"{path}: no such file or folder.")
    if path.is_dir() and (path / "state.json").is_file():
        return load_from_disk(str(path))
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        splits = load_from_disk(str(path))
        return concatenate_datasets([splits[name] for name in splits])
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for suffix, builder in ((".parquet", "parquet"), (".jsonl", "json")):
        shards = [str(file) for file in files if file.suffix == suffix]
        if shards:
            return load_dataset(builder, data_files=shards, split="train")
    raise TrainingDataError(f"{path}: expected a saved datasets folder, or .parquet / .jsonl files.")


def _training_columns(dataset: Dataset, max_negatives: int | None, source: str) -> list[str]:
    missing = [column for column in ("query", "positive") if column not in dataset.column_names]
    if missing:
        raise TrainingDataError(
            f"{source}: missing column(s) {missing}; training needs 'query', 'positive' and optional 'negative_1'... "
            f"(found {dataset.column_names})."
        )
    negatives = sorted(
        (int(match.group(1)), column) for column in dataset.column_names if (match := NEGATIVE_COLUMN.match(column))
    )
    expected = list(range(1, len(negatives) + 1))
    if [number for number, _ in negatives] != expected:
        raise TrainingDataError(f"{source}: negative columns must be negative_1..negative_k without gaps.")
    negative_columns = [column for _, column in negatives][:max_negatives]
    return ["query", "positive", *negative_columns]


def _check_texts(dataset: Dataset, source: str) -> None:
    for column in dataset.column_names:
        for row, value in enumerate(dataset[column]):
            if not isinstance(value, str) or not value.strip():
                raise TrainingDataError(f"{source}: row {row}, column {column!r}: empty or non-text value {value!r}.")
