"""Incremental, resumable output: one parquet file per finished chunk of documents.

Layout of an output folder::

    OUTPUT_DIR/
      data/chunk-000000.parquet ...   the rows (chunks that produced none have no file)
      README.md                       summary: rows per source, rejections per reason, how to load
      .augment/config.json            the settings that shape the rows (a rerun must match them)
      .augment/chunks/chunk-000000.json  done-marker, counts and rejected replies/queries of each finished chunk
      .augment/summary.json           the summary as JSON
      .augment/tmp/                   files being written (moved into place when complete)

A chunk's parquet file is written to ``tmp/`` and renamed into ``data/`` (atomic), then its marker is written the
same way. A chunk counts as done only when its marker exists, so a run killed at any point redoes at most the chunks
it was working on, and a redone chunk replaces its own file: no finished row is lost and none is duplicated.

The rows load with ``datasets.load_dataset(OUTPUT_DIR, split="train")`` (the parquet files under ``data/``;
hidden folders and README.md are not data) or :func:`load_augmented_dataset`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_drama.runs import check_run_settings

if TYPE_CHECKING:
    import datasets

STATE_DIR = ".augment"
DATA_DIR = "data"
CHUNK_PATTERN = "chunk-{index:06d}"


METADATA_COLUMNS = ("source", "doc_id", "language")


def training_columns(num_negatives: int) -> list[str]:
    """The columns a SentenceTransformerTrainer consumes, in order."""
    return ["query", "positive", *(f"negative_{number}" for number in range(1, num_negatives + 1))]


def output_columns(num_negatives: int) -> list[str]:
    return [*training_columns(num_negatives), *METADATA_COLUMNS]


class AugmentOutput:
    """The output folder of one augmentation job (possibly shared by several ``--shard`` processes).

    Args:
        output_dir: Where rows and state go.
        num_negatives: Number of ``negative_*`` columns.
    """

    def __init__(self, output_dir: str | os.PathLike, num_negatives: int) -> None:
        self.root = Path(output_dir)
        self.columns = output_columns(num_negatives)
        self.data_dir = self.root / DATA_DIR
        self.state_dir = self.root / STATE_DIR
        self.markers_dir = self.state_dir / "chunks"
        self.tmp_dir = self.state_dir / "tmp"
        for folder in (self.data_dir, self.markers_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned_temporaries()

    def check_config(self, config: dict[str, Any]) -> None:
        """Record the settings on the first run; on later runs, refuse settings that would change the rows."""
        check_run_settings(self.state_dir / "config.json", config, what=str(self.root))

    def done_chunks(self) -> set[int]:
        """Indices of the chunks whose rows are complete."""
        return {int(path.stem.split("-")[1]) for path in self.markers_dir.glob("chunk-*.json")}

    def write_chunk(self, index: int, rows: Sequence[dict[str, str]], counts: dict[str, Any]) -> None:
        """Write a finished chunk: its rows (when there are any), then its done-marker with its counts."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = CHUNK_PATTERN.format(index=index)
        data_path = self.data_dir / f"{name}.parquet"
        if rows:
            schema = pa.schema([(column, pa.string()) for column in self.columns])
            table = pa.Table.from_pylist([{column: row[column] for column in self.columns} for row in rows], schema)
            temporary = self._temporary(f"{name}.parquet")
            pq.write_table(table, temporary)
            os.replace(temporary, data_path)
        else:
            # A chunk redone after a change of code could have had rows before; it has none now.
            data_path.unlink(missing_ok=True)
        marker = {"chunk": index, "rows": len(rows), **counts}
        self._write_atomically(self.markers_dir / f"{name}.json", json.dumps(marker, sort_keys=True).encode("utf-8"))

    def chunk_counts(self) -> list[dict[str, Any]]:
        """The markers of all finished chunks, in chunk order."""
        paths = sorted(self.markers_dir.glob("chunk-*.json"))
        return [json.loads(path.read_text(encoding="utf-8")) for path in paths]

    def summary(self, total_chunks: int) -> dict[str, Any]:
        """Rows per source and rejections per source and reason, over all finished chunks."""
        markers = self.chunk_counts()
        rows_per_source: Counter = Counter()
        queries_per_source: Counter = Counter()
        rejections: dict[str, Counter] = {}
        languages: Counter = Counter()
        rerank: Counter = Counter()
        llm_replies: Counter = Counter()
        for marker in markers:
            rows_per_source.update(marker.get("rows_per_source", {}))
            queries_per_source.update(marker.get("queries_per_source", {}))
            languages.update(marker.get("languages", {}))
            rerank.update(marker.get("rerank", {}))
            llm_replies.update(marker.get("llm_replies", {}))
            for source, reasons in marker.get("rejections", {}).items():
                rejections.setdefault(source, Counter()).update(reasons)
        rejection_rates = {
            source: round(sum(reasons.values()) / queries_per_source[source], 4)
            for source, reasons in rejections.items()
            if queries_per_source.get(source)
        }
        return {
            "chunks_done": len(markers),
            "chunks_total": total_chunks,
            "documents": sum(marker.get("documents", 0) for marker in markers),
            "rows": sum(marker["rows"] for marker in markers),
            "rows_per_source": dict(sorted(rows_per_source.items())),
            "queries_attempted_per_source": dict(sorted(queries_per_source.items())),
            "rejections": {source: dict(sorted(reasons.items())) for source, reasons in sorted(rejections.items())},
            "rejection_rate_per_source": rejection_rates,
            "document_languages": dict(languages.most_common()),
            "rerank": dict(sorted(rerank.items())),
            "llm_replies": dict(sorted(llm_replies.items())),
        }

    def write_summary(self, summary: dict[str, Any], num_negatives: int) -> None:
        """``.augment/summary.json`` and the README.md dataset card."""
        self._write_atomically(self.state_dir / "summary.json", json.dumps(summary, indent=2).encode("utf-8"))
        self._write_atomically(self.root / "README.md", readme_text(summary, num_negatives).encode("utf-8"))

    def _temporary(self, name: str) -> Path:
        return self.tmp_dir / f"{name}.{os.getpid()}.tmp"

    def _write_atomically(self, path: Path, content: bytes) -> None:
        temporary = self._temporary(path.name)
        temporary.write_bytes(content)
        os.replace(temporary, path)

    def _remove_abandoned_temporaries(self) -> None:
        """Delete half-written files of killed runs (their process is gone); other live shards keep theirs."""
        for path in self.tmp_dir.glob("*.tmp"):
            pid_text = path.suffixes[-2].lstrip(".") if len(path.suffixes) >= 2 else ""
            if not pid_text.isdigit() or not _process_alive(int(pid_text)):
                path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def readme_text(summary: dict[str, Any], num_negatives: int) -> str:
    """A dataset card: what the folder holds and how to train on it."""
    columns = ", ".join(f"`{column}`" for column in output_columns(num_negatives))
    lines = [
        "# st-drama augmented training data",
        "",
        f"Made by `st-drama augment`: {summary['rows']} rows from {summary['documents']} documents "
        f"({summary['chunks_done']} of {summary['chunks_total']} chunks done).",
        "",
        f"Columns: {columns}.",
        "",
        "## Rows and rejections per source",
        "",
        "| source | queries tried | rows | rejected | rejection rate |",
        "|---|---|---|---|---|",
    ]
    for source, attempted in summary["queries_attempted_per_source"].items():
        rejected = sum(summary["rejections"].get(source, {}).values())
        rate = summary["rejection_rate_per_source"].get(source, 0.0)
        rows = summary["rows_per_source"].get(source, 0)
        lines.append(f"| {source} | {attempted} | {rows} | {rejected} | {rate:.1%} |")
    lines += ["", "| source | rejection reason | count |", "|---|---|---|"]
    for source, reasons in summary["rejections"].items():
        lines += [f"| {source} | {reason} | {count} |" for reason, count in reasons.items()]
    negatives = ", ".join(f'"negative_{number}"' for number in range(1, num_negatives + 1))
    lines += [
        "",
        "## Training",
        "",
        "```python",
        "from datasets import load_dataset",
        "from sentence_transformers import SentenceTransformerTrainer",
        "from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss",
        "",
        'dataset = load_dataset("path/to/this/folder", split="train")',
        f'train_dataset = dataset.select_columns(["query", "positive", {negatives}])',
        "trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset,",
        "                                     loss=MultipleNegativesRankingLoss(model))",
        "```",
        "",
    ]
    return "\n".join(lines)


def load_augmented_dataset(
    output_dir: str | os.PathLike, training_columns_only: bool = False, cache_dir: str | None = None
) -> datasets.Dataset:
    """The rows of an output folder as one ``datasets.Dataset``, in chunk order.

    Args:
        output_dir: A ``st-drama augment`` output folder.
        training_columns_only: Keep only ``query``, ``positive``, ``negative_*`` (what the trainer consumes).
        cache_dir: The datasets cache to use.
    """
    import datasets

    data_files = sorted(str(path) for path in (Path(output_dir) / DATA_DIR).glob("chunk-*.parquet"))
    if not data_files:
        config = json.loads((Path(output_dir) / STATE_DIR / "config.json").read_text(encoding="utf-8"))
        empty = {column: [] for column in output_columns(config["num_negatives"])}
        dataset = datasets.Dataset.from_dict(
            empty, features=datasets.Features(dict.fromkeys(empty, datasets.Value("string")))
        )
    else:
        dataset = datasets.load_dataset("parquet", data_files=data_files, split="train", cache_dir=cache_dir)
    if training_columns_only:
        dataset = dataset.select_columns([column for column in dataset.column_names if column not in METADATA_COLUMNS])
    return dataset
