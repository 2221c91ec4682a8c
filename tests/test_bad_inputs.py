"""The bad inputs users produce, fed to every command: each gets a clear error naming the file, line or field (or
the numbers and the option to change) before any model loads, exits 2, and leaves no output behind.

Kills in the middle, then a rerun, are tested where each command keeps its checkpoints:
``tests/cli/test_augment.py::test_kill_9_then_rerun_loses_and_duplicates_nothing``,
``tests/training/test_contrastive.py::test_interrupted_training_resumes_to_the_same_weights``,
``tests/llara/test_adaptation.py::test_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_run``,
``tests/pruning/test_pruner.py::test_an_interrupted_run_reuses_its_pruned_model_and_checkpoints`` and
``test_pipeline_killed_in_training_resumes_where_it_stopped`` below.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_cranfield_subset

from st_drama.cli import main

Breaker = Callable[[Path], None]


def rewrite_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def empty_file(folder: Path) -> None:
    (folder / "corpus.jsonl").write_text("")


def bad_json_line(folder: Path) -> None:
    rewrite_line(folder / "corpus.jsonl", 3, '{"_id": "3", "text": "broken')


def missing_text_field(folder: Path) -> None:
    rewrite_line(folder / "corpus.jsonl", 4, json.dumps({"_id": "4", "body": "the field is called text"}))


def not_utf8(folder: Path) -> None:
    with open(folder / "corpus.jsonl", "ab") as handle:
        handle.write(b'{"_id": "bad", "text": "caf\xe9 au lait"}\n')


def duplicate_id(folder: Path) -> None:
    first = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[0]
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as handle:
        handle.write(first + "\n")


def duplicate_query_id(folder: Path) -> None:
    first = (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()[0]
    with open(folder / "queries.jsonl", "a", encoding="utf-8") as handle:
        handle.write(first + "\n")


def no_query_judged(folder: Path) -> None:
    lines = (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    (folder / "qrels" / "test.tsv").write_text("\n".join([lines[0], "nobody\t1\t1"]) + "\n")


def tiny_corpus(folder: Path) -> None:
    lines = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "corpus.jsonl").write_text("\n".join(lines[:10]) + "\n")


CORPUS_CASES = {
    "empty file": (empty_file, "holds no document with text"),
    "bad JSON line": (bad_json_line, r"corpus.jsonl:3: malformed JSON"),
    "missing field": (missing_text_field, r"corpus.jsonl:4: document '4' has no field 'text'"),
    "non-UTF-8 bytes": (not_utf8, r"corpus.jsonl:\d+: not UTF-8 text"),
    "duplicate ids": (duplicate_id, r"corpus.jsonl:\d+: duplicate document id '1'"),
}


@pytest.fixture
def collection(tmp_path) -> Path:
    return write_cranfield_subset(tmp_path / "collection", documents=60)


def fails_clearly(arguments: list[str], expected: str, capsys, output: Path) -> None:
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert f"st-drama {arguments[0]}: error: " in error
    assert "Loading weights" not in error, "a model was loaded before the input was checked"
    assert re.search(expected, error), error
    assert not output.exists(), f"{output} was created by a refused command"


@pytest.mark.parametrize("case", sorted(CORPUS_CASES))
@pytest.mark.parametrize("command", ["augment", "pretrain", "evaluate", "pipeline", "prune"])
def test_bad_corpora_are_refused_by_every_command_that_reads_one(command, case, collection, tiny_llama_dir, capsys):
    breaker, expected = CORPUS_CASES[case]
    breaker(collection)
    output = collection.parent / "out"
    model = str(tiny_llama_dir)
    arguments = {
        "augment": ["augment", str(collection), str(output), "--sources", "crop", "--no-progress"],
        "pretrain": ["pretrain", model, str(collection), str(output), "--steps", "1"],
        "evaluate": [
            "evaluate",
            model,
            str(collection),
            "--output",
            str(output),
            "--baselines",
            "bm25",
            "--no-progress",
        ],
        "pipeline": ["pipeline", str(collection), str(output), "--model", model, "--no-progress"],
        "prune": ["prune", model, str(output), "--layers", "1", "--calibration", str(collection), "--no-bf16"],
    }[command]
    fails_clearly(arguments, expected, capsys, output)


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (duplicate_query_id, r"queries.jsonl:\d+: duplicate query id"),
        (no_query_judged, "no query in queries.jsonl has"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "pipeline"])
def test_bad_queries_and_judgements_are_refused_before_training(command, breaker, expected, collection, capsys,
                                                                  tiny_llama_dir):  # fmt: skip
    breaker(collection)
    output = collection.parent / "out"
    arguments = {
        "evaluate": ["evaluate", str(tiny_llama_dir), str(collection), "--output", str(output), "--baselines", "bm25"],
        "pipeline": ["pipeline", str(collection), str(output), "--model", str(tiny_llama_dir), "--no-progress"],
    }[command]
    fails_clearly(arguments, expected, capsys, output)


def test_judgements_naming_unknown_documents_and_unjudged_queries_are_reported_not_fatal(collection, tmp_path, caplog):
    with open(collection / "qrels" / "test.tsv", "a", encoding="utf-8") as handle:
        handle.write("1\tno-such-document\t2\n")
    with open(collection / "queries.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"_id": "unjudged", "text": "a query nobody judged"}) + "\n")
    with caplog.at_level(logging.WARNING):
        code = main(
            ["evaluate", "bm25-only", str(collection), "--output", str(tmp_path / "out"), "--baselines", "bm25"]
        )
    assert code == 2  # no such model: the folder was read and checked first, then the model is refused
    assert "judges 1 document ids absent from corpus.jsonl (e.g. 'no-such-document')" in caplog.text
    assert "holds 1 queries without a judgement" in caplog.text


def test_too_small_inputs_get_the_numbers_and_the_option(collection, tiny_llama_dir, tmp_path, capsys):
    tiny_corpus(collection)
    fails_clearly(
        [
            "augment",
            str(collection),
            str(tmp_path / "augmented"),
            "--sources",
            "crop,synthetic",
            "--rerank",
            "listwise",
        ],
        r"The corpus has 10 documents, but hard negatives come from reranked ranks 10-20 .* at least 17 documents",
        capsys,
        tmp_path / "augmented",
    )
    fails_clearly(
        ["pipeline", str(collection), str(tmp_path / "run"), "--model", str(tiny_llama_dir)],
        r"The corpus has 10 documents, .* at least 31 documents",
        capsys,
        tmp_path / "run",
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(3)))
    fails_clearly(
        ["train", str(tiny_llama_dir), str(rows), str(tmp_path / "trained"), "--batch-size", "4"],
        r"3 rows, fewer than one batch of 4 \(--batch-size\)",
        capsys,
        tmp_path / "trained",
    )
    fails_clearly(
        ["prune", str(tiny_llama_dir), str(tmp_path / "pruned"), "--layers", "9"],
        "num_layers=9 is larger than the source's 2",
        capsys,
        tmp_path / "pruned",
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", r"rows.jsonl: no rows"),
        ('{"query": "q", "positive": "p"}\n{"query": "q2", "positive": \n', r"rows.jsonl:2: malformed JSON"),
        ('{"query": "q", "document": "p"}\n', r"rows.jsonl:1: missing field\(s\) \['positive'\]"),
        ('{"query": "q", "positive": "p"}\n{"query": "q", "positive": ""}\n', r"rows.jsonl:2: field 'positive'"),
        # A number among strings, which Arrow would refuse without naming the line.
        ('{"query": "q", "positive": "p"}\n{"query": "q", "positive": 5}\n', r"rows.jsonl:2: field 'positive'.* 5"),
    ],
)
def test_bad_training_rows_are_named_by_file_and_line(content, expected, tiny_llama_dir, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(content)
    command = ["train", str(tiny_llama_dir), str(rows), str(tmp_path / "trained"), "--batch-size", "2"]
    fails_clearly(command, expected, capsys, tmp_path / "trained")


def test_training_rows_that_are_not_utf8_are_named(tiny_llama_dir, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"query": "q", "positive": "p"}\n{"query": "caf\xe9", "positive": "p"}\n')
    command = ["train", str(tiny_llama_dir), str(rows), str(tmp_path / "trained"), "--batch-size", "1"]
    fails_clearly(command, r"rows.jsonl:2: not UTF-8 text", capsys, tmp_path / "trained")


@pytest.mark.parametrize("command", ["augment", "train", "pretrain", "prune", "evaluate", "pipeline", "convert"])
def test_an_output_path_that_is_a_file_is_refused(command, collection, tiny_llama_dir, tmp_path, capsys):
    output = tmp_path / "output.txt"
    output.write_text("keep me")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(4)))
    model = str(tiny_llama_dir)
    arguments = {
        "augment": ["augment", str(collection), str(output)],
        "train": ["train", model, str(rows), str(output), "--batch-size", "2"],
        "pretrain": ["pretrain", model, str(collection), str(output)],
        "prune": ["prune", model, str(output), "--layers", "1"],
        "evaluate": ["evaluate", model, str(collection), "--output", str(output)],
        "pipeline": ["pipeline", str(collection), str(output), "--model", model],
        "convert": ["convert", model, str(output), "--release", "llara"],
    }[command]
    assert main(arguments) == 2
    assert "is a file" in capsys.readouterr().err
    assert output.read_text() == "keep me"


def test_convert_refuses_a_folder_that_is_not_a_release(tmp_path, capsys):
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "config.json").write_text("{}")
    fails_clearly(["convert", str(tmp_path / "release"), str(tmp_path / "out")], "missing weights", capsys,
                  tmp_path / "out")  # fmt: skip


PIPELINE_SCRIPT = """
import logging
import sys
from st_drama.pipeline import PipelineConfig, run_pipeline

logging.basicConfig(level=logging.INFO)

collection, output, model = sys.argv[1:4]
config = PipelineConfig.from_preset(
    "quick", model=model, evaluate=None, augment={"mining": {"num_negatives": 1}},
    train={"steps": 40, "batch_size": 4, "save_steps": 2, "max_seq_length": 48, "bf16": False},
)
run_pipeline(collection, output, config, show_progress=False)
"""


def test_pipeline_killed_in_training_resumes_where_it_stopped(collection, tiny_llama_dir, tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, "-c", PIPELINE_SCRIPT, str(collection), str(output), str(tiny_llama_dir)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    # Killed once a checkpoint is complete, maybe while it writes the next one (which the rerun must not take).
    while (
        not list((output / "train" / "checkpoints").glob("checkpoint-*/trainer_state.json")) and time.time() < deadline
    ):
        assert process.poll() is None, process.stderr.read()[-2000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((output / "train" / "stage.json").read_text())["status"] == "running"
    assert json.loads((output / "augment" / "stage.json").read_text())["status"] == "done"
    assert not (output / "model").exists()
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Stage augment: done earlier" in finished.stderr and "resuming the interrupted run" in finished.stderr
    run = json.loads((output / "model" / "st_drama_run.json").read_text())
    assert run["steps"] == 40 and run["resumed_from"]
