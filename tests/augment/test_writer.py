from __future__ import annotations

import os

import datasets
import pytest

from st_drama.augment.writer import AugmentOutput, load_augmented_dataset, output_columns, training_columns
from st_drama.runs import RunSettingsMismatchError


def make_rows(chunk: int, count: int, num_negatives: int = 2) -> list[dict[str, str]]:
    rows = []
    for number in range(count):
        row = {column: f"{column} {chunk}.{number}" for column in output_columns(num_negatives)}
        row["source"] = "crop" if number % 2 == 0 else "synthetic"
        rows.append(row)
    return rows


def counts(rows) -> dict:
    per_source: dict[str, int] = {}
    for row in rows:
        per_source[row["source"]] = per_source.get(row["source"], 0) + 1
    return {
        "documents": 3,
        "queries_per_source": {"crop": 3, "synthetic": 3},
        "rows_per_source": per_source,
        "rejections": {"synthetic": {"empty": 1}},
        "languages": {"en": 3},
        "rerank": {},
    }


def test_chunks_load_with_datasets_in_chunk_order(tmp_path):
    output = AugmentOutput(tmp_path, num_negatives=2)
    for chunk, count in ((2, 3), (0, 2), (1, 0)):
        rows = make_rows(chunk, count)
        output.write_chunk(chunk, rows, counts(rows))
    assert output.done_chunks() == {0, 1, 2}
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [
        "chunk-000000.parquet",
        "chunk-000002.parquet",
    ]
    output.write_summary(output.summary(total_chunks=4), num_negatives=2)

    loaded = datasets.load_dataset(str(tmp_path), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.column_names == ["query", "positive", "negative_1", "negative_2", "source", "doc_id", "language"]
    assert loaded["query"] == ["query 0.0", "query 0.1", "query 2.0", "query 2.1", "query 2.2"]
    ours = load_augmented_dataset(tmp_path, cache_dir=str(tmp_path / "cache"))
    assert ours.to_list() == loaded.to_list()
    training = load_augmented_dataset(tmp_path, training_columns_only=True, cache_dir=str(tmp_path / "cache"))
    assert training.column_names == training_columns(2) == ["query", "positive", "negative_1", "negative_2"]

    summary = output.summary(total_chunks=4)
    assert summary["chunks_done"] == 3 and summary["chunks_total"] == 4 and summary["rows"] == 5
    assert summary["rows_per_source"] == {"crop": 3, "synthetic": 2}
    assert summary["rejections"] == {"synthetic": {"empty": 3}}
    assert summary["rejection_rate_per_source"] == {"synthetic": round(3 / 9, 4)}
    readme = (tmp_path / "README.md").read_text()
    assert "| synthetic | 9 | 2 | 3 | 33.3% |" in readme and 'select_columns(["query", "positive"' in readme


def test_a_rewritten_chunk_replaces_its_rows(tmp_path):
    output = AugmentOutput(tmp_path, num_negatives=2)
    output.write_chunk(0, make_rows(0, 3), counts([]))
    output.write_chunk(0, make_rows(0, 1), counts([]))
    assert len(load_augmented_dataset(tmp_path, cache_dir=str(tmp_path / "cache"))) == 1
    output.write_chunk(0, [], counts([]))
    assert not (tmp_path / "data" / "chunk-000000.parquet").exists()


def test_rows_without_a_done_marker_do_not_count(tmp_path):
    output = AugmentOutput(tmp_path, num_negatives=2)
    output.write_chunk(0, make_rows(0, 2), counts([]))
    (tmp_path / ".augment" / "chunks" / "chunk-000000.json").unlink()  # killed between the two renames
    assert output.done_chunks() == set()


def test_empty_output_loads_as_an_empty_dataset(tmp_path):
    output = AugmentOutput(tmp_path, num_negatives=3)
    output.check_config({"num_negatives": 3})
    output.write_chunk(0, [], counts([]))
    dataset = load_augmented_dataset(tmp_path)
    assert len(dataset) == 0 and dataset.column_names == output_columns(3)


def test_resuming_with_other_settings_is_refused(tmp_path):
    output = AugmentOutput(tmp_path, num_negatives=2)
    output.check_config({"seed": 0, "sources": ["crop"]})
    output.check_config({"seed": 0, "sources": ["crop"]})
    with pytest.raises(RunSettingsMismatchError, match=r"seed: 0 -> 1"):
        AugmentOutput(tmp_path, num_negatives=2).check_config({"seed": 1, "sources": ["crop"]})


def test_half_written_files_of_dead_processes_are_removed(tmp_path):
    AugmentOutput(tmp_path, num_negatives=2)
    tmp_dir = tmp_path / ".augment" / "tmp"
    dead = tmp_dir / "chunk-000001.parquet.999999999.tmp"
    alive = tmp_dir / f"chunk-000002.parquet.{os.getpid()}.tmp"
    dead.write_bytes(b"partial")
    alive.write_bytes(b"partial")
    AugmentOutput(tmp_path, num_negatives=2)
    assert not dead.exists() and alive.exists()
