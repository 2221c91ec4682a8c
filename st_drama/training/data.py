"""Loading contrastive training data: (query, positive, negative_1, ..., negative_k) rows, optionally with a
teacher's ``scores`` for each row's candidates."""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_dataset, load_from_disk

from st_drama.corpus import CorpusFormatError, read_jsonl

logger = logging.getLogger(__name__)

NEGATIVE_COLUMN = re.compile(r"^negative_(\d+)$")
# A teacher's scores for a row's positive and each hard negative; sentence-transformers passes a column of this
# name to the loss as its labels.
SCORES_COLUMN = "scores"


class TrainingDataError(ValueError):
    """Training data that cannot be used; the message names the file, row or column."""


def load_training_data(
    data: str | os.PathLike | Dataset, num_negatives: int | None = None, teacher_scores: bool = False
) -> Dataset:
    """Contrastive rows as a ``datasets.Dataset`` with columns ``query``, ``positive``, ``negative_1`` ... in that
    order (what ``MultipleNegativesRankingLoss`` expects), then ``scores`` when ``teacher_scores``; other columns
    (``source``, ``doc_id``, ...) dropped.

    Args:
        data: A ``datasets.Dataset``; a folder written by ``Dataset.save_to_disk``; a folder of ``.parquet`` or
            ``.jsonl`` shards (``st-drama augment`` output); or a single ``.parquet``/``.jsonl`` file.
        num_negatives: Keep only the first hard negatives (default: all ``negative_*`` columns).
        teacher_scores: Keep the ``scores`` column (a teacher's score for the positive, then each hard negative),
            cut to the negatives kept.

    Raises:
        TrainingDataError: Missing columns, an empty or non-text value, or teacher scores missing, not numbers
            or of the wrong length (naming row and column).
    """
    source = str(data) if not isinstance(data, Dataset) else "data"
    dataset = data if isinstance(data, Dataset) else _read(Path(data))
    if len(dataset) == 0:
        raise TrainingDataError(f"{source}: no rows.")
    columns = _training_columns(dataset, num_negatives, source=source)
    _check_texts(dataset.select_columns(columns), source)
    if not teacher_scores:
        return dataset.select_columns(columns)
    candidates = 1 + sum(1 for column in dataset.column_names if NEGATIVE_COLUMN.match(column))
    _check_scores(dataset, candidates, source)
    kept = len(columns) - 1  # the positive and the negatives kept
    if kept < candidates:
        dataset = dataset.map(lambda row: {SCORES_COLUMN: row[SCORES_COLUMN][:kept]})
    return dataset.select_columns([*columns, SCORES_COLUMN])


def _read(path: Path) -> Dataset:
    if not path.exists():
        raise TrainingDataError(f"{path}: no such file or folder.")
    if path.is_dir() and (path / "state.json").is_file():
        return load_from_disk(str(path))
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        splits = load_from_disk(str(path))
        return concatenate_datasets([splits[name] for name in splits])
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    parquet = [str(file) for file in files if file.suffix == ".parquet"]
    if parquet:
        return load_dataset("parquet", data_files=parquet, split="train")
    jsonl = [file for file in files if file.suffix == ".jsonl"]
    if jsonl:
        return _read_jsonl_rows(jsonl)
    raise TrainingDataError(f"{path}: expected a saved datasets folder, or .parquet / .jsonl files.")


def _read_jsonl_rows(files: list[Path]) -> Dataset:
    """Rows of JSONL shards, read line by line so that a bad line (not JSON, not UTF-8, a missing or non-text field)
    is named by its file and line."""
    rows: list[dict] = []
    columns: list[str] | None = None
    for file in files:
        try:
            for line_number, row in read_jsonl(file):
                where = f"{file}:{line_number}"
                if columns is None:
                    columns = list(row)
                missing = [column for column in ("query", "positive") if column not in row]
                if missing:
                    raise TrainingDataError(f"{where}: missing field(s) {missing}.")
                if set(row) != set(columns):
                    raise TrainingDataError(f"{where}: fields {sorted(row)} differ from the first row's {columns}.")
                # Checked here, not only after loading: Arrow refuses a number among strings without naming the line.
                for column, value in row.items():
                    if _is_training_text_column(column) and not _is_text(value):
                        raise TrainingDataError(f"{where}: field {column!r}: empty or non-text value {value!r}.")
                rows.append(row)
        except CorpusFormatError as error:
            raise TrainingDataError(str(error)) from error
    if not rows:
        raise TrainingDataError(f"{', '.join(str(file) for file in files)}: no rows.")
    return Dataset.from_list(rows)


def _training_columns(dataset: Dataset, num_negatives: int | None, source: str) -> list[str]:
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
    if num_negatives is not None and num_negatives > len(negatives):
        raise TrainingDataError(
            f"{source}: {num_negatives} hard negatives per row were asked for (--negatives), but the rows have "
            f"{len(negatives)} (negative_1..negative_{len(negatives)})."
        )
    negative_columns = [column for _, column in negatives][:num_negatives]
    return ["query", "positive", *negative_columns]


def _check_texts(dataset: Dataset, source: str) -> None:
    for column in dataset.column_names:
        for row, value in enumerate(dataset[column]):
            if not _is_text(value):
                raise TrainingDataError(
                    f"{source}: row {row + 1} of {len(dataset)}, column {column!r}: empty or non-text value {value!r}."
                )


def _check_scores(dataset: Dataset, candidates: int, source: str) -> None:
    """Every row carries one finite number per candidate (the positive and each hard negative); -inf marks a
    candidate the teacher excludes."""
    if SCORES_COLUMN not in dataset.column_names:
        raise TrainingDataError(
            f"{source}: distillation needs a {SCORES_COLUMN!r} column (the teacher's score for the positive, then "
            f"each hard negative); found {dataset.column_names}."
        )
    for row, scores in enumerate(dataset[SCORES_COLUMN]):
        valid = (
            isinstance(scores, list)
            and len(scores) == candidates
            and all(isinstance(score, int | float) and not math.isnan(score) and score != math.inf for score in scores)
        )
        if not valid:
            raise TrainingDataError(
                f"{source}: row {row + 1} of {len(dataset)}, column {SCORES_COLUMN!r}: expected {candidates} numbers "
                f"(the positive, then negative_1..negative_{candidates - 1}), got {scores!r}."
            )


def _is_training_text_column(column: str) -> bool:
    return column in ("query", "positive") or NEGATIVE_COLUMN.match(column) is not None


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
