"""benchmarks/quality.py's guard on equal time: a kept record's CPU seconds budget the plain recipe only on a machine
of the kind its preset trained on."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from st_drama.precision import cpu_has_native_bf16

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "quality.py"


def load_quality_benchmark():
    spec = importlib.util.spec_from_file_location("quality_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kept_record(machine: dict[str, bool] | None) -> dict:
    record = {
        "collection": "cisi",
        "preset": "full",
        "scores": {"model": {"ndcg_at_10": 0.4, "recall_at_100": 0.5}},
        "train_seconds": {"ours": 100.0},
        "train_cpu_seconds": {"ours": 99.0},
    }
    return record if machine is None else record | {"machine": machine}


def test_a_record_of_this_machines_kind_is_accepted():
    quality = load_quality_benchmark()
    here = {"cpu_native_bf16": cpu_has_native_bf16()}
    assert quality.machine_kind() == here
    quality.check_same_machine_kind(kept_record(here), Path("cisi.json"))


@pytest.mark.parametrize("machine", [None, {"cpu_native_bf16": not cpu_has_native_bf16()}])
def test_a_record_of_another_or_unknown_kind_is_refused(machine):
    quality = load_quality_benchmark()
    with pytest.raises(SystemExit, match=r"records/full/cisi\.json: .*machine"):
        quality.check_same_machine_kind(kept_record(machine), Path("records/full/cisi.json"))


def test_the_benchmark_refuses_before_any_work(tmp_path):
    # Cranfield, first in the suite, has no record: the refusal must come before its pipeline starts.
    records = tmp_path / "records"
    kept = records / "full" / "cisi.json"
    kept.parent.mkdir(parents=True)
    other_kind = kept_record({"cpu_native_bf16": not cpu_has_native_bf16()})
    kept.write_text(json.dumps(other_kind), encoding="utf-8")
    output = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(output), "--preset", "full", "--baselines", "bm25"]
    finished = subprocess.run(
        [*command, "--records", str(records), "--collections", "cranfield,cisi"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert f"{kept}: 'machine'" in finished.stderr
    assert not output.exists()
    assert json.loads(kept.read_text(encoding="utf-8")) == other_kind


def test_a_table_from_kept_records_alone_is_written(tmp_path):
    records = tmp_path / "records"
    kept = records / "full" / "cisi.json"
    kept.parent.mkdir(parents=True)
    scores = {"ndcg_at_10": 0.4, "recall_at_100": 0.5}
    record = kept_record({"cpu_native_bf16": cpu_has_native_bf16()})
    record["scores"] |= {"model+bm25:rsf-0.3": scores, "bm25": scores}
    kept.write_text(json.dumps(record), encoding="utf-8")
    output = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(output), "--preset", "full", "--no-plain", "--baselines", "bm25"]
    finished = subprocess.run(
        [*command, "--records", str(records), "--collections", "cisi"], capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    table = (output / "full" / "quality.md").read_text(encoding="utf-8")
    assert "| cisi | 0.400 / 0.500 |" in table
